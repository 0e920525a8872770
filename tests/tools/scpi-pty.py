#!/usr/bin/env python3
# Drives `tether scpi`'s interactive shell through a pseudo-terminal, as a
# person would: typed lines, the up arrow, :stb, :quit. Prints the whole
# session (what the terminal showed) on stdout for the calling test.
import os, pty, select, sys, time

argv = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)

seen = b""

def read_until(token, timeout=10.0):
    global seen
    end = time.time() + timeout
    while token not in seen:
        left = end - time.time()
        if left <= 0:
            sys.stdout.write(seen.decode(errors="replace"))
            sys.exit("pty: timed out waiting for %r" % token)
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk

def send(text, then):
    global seen
    mark = len(seen)
    os.write(fd, text)
    # Wait for what the command prints, after the echo of what was typed.
    end = time.time() + 10
    while then not in seen[mark:]:
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        if not r:
            sys.stdout.write(seen.decode(errors="replace"))
            sys.exit("pty: timed out waiting for %r" % then)
        seen += os.read(fd, 4096)

prompt = os.environ.get("PROMPT", "> ").encode()
read_until(prompt)
send(b"*IDN?\r", b"34461A,")
send(b":stb\r", b"status byte")
# Up twice: the line before :stb, recalled from history and sent again.
send(b"\x1b[A\x1b[A\r", b"34461A,")
os.write(fd, b":quit\r")
end = time.time() + 10
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.time() > end:
        os.kill(pid, 9)
        sys.exit("pty: :quit did not end the shell")
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try:
            seen += os.read(fd, 4096)
        except OSError:
            pass
try:
    while True:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            break
        c = os.read(fd, 4096)
        if not c:
            break
        seen += c
except OSError:
    pass
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
