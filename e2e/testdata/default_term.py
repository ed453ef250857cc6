"""An app with no SIGTERM handler: the default disposition kills it (143
through spotinit). As PID 1 it would ignore TERM; as spotinit's child it
cannot."""
import os
import time

print("app ready: pid {}, default SIGTERM".format(os.getpid()), flush=True)
while True:
    time.sleep(3600)
