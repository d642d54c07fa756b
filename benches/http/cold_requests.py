#!/usr/bin/env python3
# 1,000 concurrent cold requests: open 1,000 connections, then send one GET on each at once.
import asyncio, json, sys
port=int(sys.argv[1]); path=sys.argv[2]; n=int(sys.argv[3]) if len(sys.argv)>3 else 1000
async def get(p):
    r,w=await asyncio.open_connection('127.0.0.1',port)
    w.write(f"GET {p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()); await w.drain()
    data=await r.read(); w.close(); return data
async def main():
    before=json.loads((await get('/stats')).split(b'\r\n\r\n',1)[1])['db_reads']
    conns=[await asyncio.open_connection('127.0.0.1',port) for _ in range(n)]
    for r,w in conns: w.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await asyncio.gather(*(w.drain() for r,w in conns))
    bodies=await asyncio.gather(*(r.read() for r,w in conns))
    ok=sum(1 for b in bodies if b.startswith(b'HTTP/1.1 200'))
    after=json.loads((await get('/stats')).split(b'\r\n\r\n',1)[1])['db_reads']
    print(f"{n} concurrent cold requests for {path}: {ok} answered 200, database reads: {after-before}")
asyncio.run(main())
