#!/usr/bin/env python3
"""A worker that shuts down cleanly, as the ECS Spot workshop's
Ec2SpotInterruptionHandler sample meant to.

It processes items in a loop. On SIGTERM or SIGINT it finishes the item it
is working on, says so, and exits 0. On SIGUSR1 (spotinit's --notice-signal,
sent when an interruption notice arrives) it checkpoints and keeps going.

Settings (environment):
  APP_ITEM_SECONDS  how long one item takes (default 0.5)
  APP_WRAPUP_SECONDS  how long wrapping up takes after the stop signal (default 0.2)
"""
import os
import signal
import sys
import time


class Ec2SpotInterruptionHandler:
    signals = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}

    def __init__(self):
        self.stop_requested = False
        self.checkpoint_requested = False
        signal.signal(signal.SIGINT, self.exit_gracefully)
        signal.signal(signal.SIGTERM, self.exit_gracefully)
        signal.signal(signal.SIGUSR1, self.checkpoint)

    def exit_gracefully(self, signum, frame):
        print("Received {} signal".format(self.signals[signum]), flush=True)
        if signum == signal.SIGTERM:
            print("SIGTERM Signal Received. Let's wrap up..", flush=True)
        self.stop_requested = True

    def checkpoint(self, signum, frame):
        self.checkpoint_requested = True


def main():
    item_seconds = float(os.environ.get("APP_ITEM_SECONDS", "0.5"))
    wrapup_seconds = float(os.environ.get("APP_WRAPUP_SECONDS", "0.2"))
    handler = Ec2SpotInterruptionHandler()
    print("app ready: pid {}".format(os.getpid()), flush=True)
    item = 0
    while not handler.stop_requested:
        item += 1
        # One unit of work; a signal interrupts the sleep, the item still completes.
        deadline = time.monotonic() + item_seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(left)
        print("processed item {}".format(item), flush=True)
        if handler.checkpoint_requested:
            handler.checkpoint_requested = False
            print("interruption notice: checkpoint saved after item {}".format(item), flush=True)
    time.sleep(wrapup_seconds)
    print("wrapped up after item {}; exiting 0".format(item), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
