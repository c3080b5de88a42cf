#!/usr/bin/env python3
"""Waits until a `koban serve` has stored and detected every record it accepted.

usage: wait.py URL CERT ADMIN_TOKEN
"""
import ssl
import sys

from collect import wait_caught_up

if __name__ == "__main__":
    url, cert, admin = sys.argv[1:4]
    wait_caught_up(ssl.create_default_context(cafile=cert), url.rstrip("/"), admin)
