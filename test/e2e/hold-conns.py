"""Many long-lived HTTP streams opened at a steady rate, held, and judged (test/e2e/vrrp-sync.test.ts).

    hold-conns.py URL_HOST PORT COUNT RATE SECONDS SRC...

Opens COUNT connections to URL_HOST:PORT, RATE per second, round robin over the source
addresses SRC, each asking the lab server (src/lab/server.ts) for GET /stream?seconds=SECONDS&ms=500
(one line "<realserver> <i>" every 500 ms). Prints one JSON line when every connection got its
first line ({"event": "opened", "count", "ms"}) and then, when stdin closes (the test is done),
the verdict: {"event": "done", "count", "broken", "changed", "reset", "stalled"}: broken = ended
before SECONDS without an error-free close, changed = a line from another realserver than the
first, stalled = no line for more than 3 s at the end. Standard library only.
"""
import json
import selectors
import socket
import sys
import threading
import time


def main():
    host, port, count, rate, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    sources = sys.argv[6:]
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    sel = selectors.DefaultSelector()
    conns = []
    lock = threading.Lock()
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    t0 = time.monotonic()
    opened_reported = False
    i = 0
    while not done.is_set():
        now = time.monotonic()
        while i < count and now >= t0 + i / rate:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.bind((sources[i % len(sources)], 0))
            s.setblocking(False)
            try:
                s.connect((host, port))
            except BlockingIOError:
                pass
            c = {'sock': s, 'buf': b'', 'rs': None, 'last': now, 'ended': None, 'sent': False, 'changed': False}
            conns.append(c)
            sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
            i += 1
        for key, ev in sel.select(timeout=0.05):
            c = key.data
            s = c['sock']
            if ev & selectors.EVENT_WRITE and not c['sent']:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    c['ended'] = 'connect-error-%d' % err
                    sel.unregister(s)
                    continue
                s.send(('GET /stream?seconds=%d&ms=500 HTTP/1.0\r\nHost: x\r\n\r\n' % seconds).encode())
                c['sent'] = True
                sel.modify(s, selectors.EVENT_READ, c)
                continue
            if ev & selectors.EVENT_READ:
                try:
                    data = s.recv(65536)
                except OSError as e:
                    c['ended'] = 'reset' if isinstance(e, ConnectionResetError) else 'error'
                    sel.unregister(s)
                    continue
                if not data:
                    c['ended'] = 'closed'
                    sel.unregister(s)
                    continue
                c['last'] = time.monotonic()
                c['buf'] += data
                *lines, c['buf'] = c['buf'].split(b'\n')
                for line in lines:
                    parts = line.split()
                    if len(parts) == 2 and parts[1].isdigit():
                        name = parts[0].decode()
                        if c['rs'] is None:
                            c['rs'] = name
                        elif name != c['rs']:
                            c['changed'] = True
        if not opened_reported and i == count and all(c['rs'] is not None or c['ended'] for c in conns):
            opened_reported = True
            print(json.dumps({'event': 'opened', 'count': count, 'ms': round((time.monotonic() - t0) * 1000),
                              'failed': sum(1 for c in conns if c['ended'])}), flush=True)
    now = time.monotonic()
    print(json.dumps({
        'event': 'done', 'count': len(conns),
        'broken': sum(1 for c in conns if c['ended']),
        'reset': sum(1 for c in conns if c['ended'] == 'reset'),
        'changed': sum(1 for c in conns if c['changed']),
        'stalled': sum(1 for c in conns if not c['ended'] and now - c['last'] > 3),
        'ends': sorted(set(c['ended'] for c in conns if c['ended'])),
    }), flush=True)


if __name__ == '__main__':
    main()
