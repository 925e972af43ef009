#!/usr/bin/python3
"""Opens N concurrent connections to an echo server (all connected at the
same time), sends each a distinct payload, checks every byte that comes
back, and prints JSON counts. Bounded by a deadline."""
import asyncio
import json
import random
import resource
import sys


async def one(host, port, i, size, all_open, opened, results):
    payload = random.Random(i).randbytes(size)
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as e:
        results["connect_errors"].append(str(e))
        opened.release()
        return
    opened.release()
    await all_open.wait()
    try:
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        back = await reader.read(-1)
        if back == payload:
            results["exact"] += 1
        else:
            results["mismatch"] += 1
    except OSError as e:
        results["io_errors"].append(str(e))
    finally:
        writer.close()


async def main():
    host, port, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = {"exact": 0, "mismatch": 0, "connect_errors": [], "io_errors": []}
    all_open = asyncio.Event()
    opened = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(one(host, port, i, size, all_open, opened, results))
             for i in range(n)]
    for _ in range(n):
        await opened.acquire()
    all_open.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 240)
    results["connect_errors"] = results["connect_errors"][:5]
    results["io_errors"] = results["io_errors"][:5]
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
