"""An app that ignores SIGTERM, as a stuck worker does: only SIGKILL ends it.

It prints its ready line only after the disposition is set, so that a test
sending TERM after that line knows the signal is ignored, not lost.
"""
import os
import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("app ready: pid {}, ignoring SIGTERM".format(os.getpid()), flush=True)
while True:
    time.sleep(3600)
