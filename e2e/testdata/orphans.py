"""Makes N orphans (argv[1], default 20) that exit while re-parented to PID 1.

Each child forks a grandchild and exits at once; once every child is
reaped, the grandchildren are orphans of PID 1. Then they are released
together and exit, and only PID 1 can reap them: under spotinit they vanish,
under a PID 1 that never waits (this script itself, as the negative
control) they stay zombies. The script says "orphans exited" once the last
of them has closed its end of a pipe, i.e. exited, and then waits for
SIGTERM, on which it exits 0.
"""
import os
import signal
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
# Held pending until sigwait below, so that a TERM arriving at any moment
# after the ready line is taken, never lost.
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])

gone_r, gone_w = os.pipe()  # each grandchild holds gone_w until it exits
go_r, go_w = os.pipe()      # closed by us to release the grandchildren
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            os.close(gone_r)
            os.close(go_w)
            os.read(go_r, 1)  # EOF when released
            os._exit(0)
        os._exit(0)
    os.waitpid(pid, 0)
os.close(gone_w)
os.close(go_r)
print("orphans made: {} (pid {})".format(n, os.getpid()), flush=True)
os.close(go_w)
os.read(gone_r, 1)  # EOF once the last grandchild has exited
print("orphans exited: {}".format(n), flush=True)
signal.sigwait([signal.SIGTERM])
print("wrapped up; exiting 0", flush=True)
