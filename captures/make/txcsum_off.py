#!/usr/bin/env python3
"""Turn off TX checksum offload on network interfaces (like `ethtool -K IF tx off`),
standard library only: SIOCETHTOOL / ETHTOOL_STXCSUM.  Needed where frames are
forwarded by wire.py (AF_PACKET would otherwise pass on frames whose TCP
checksum the kernel has not filled in yet).  Usage: txcsum_off.py IF [IF...]"""
import ctypes
import fcntl
import socket
import struct
import sys

SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x00000017

for name in sys.argv[1:]:
    val = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_STXCSUM, 0))
    ifr = struct.pack("16sP", name.encode(), ctypes.addressof(val)).ljust(40, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
