# Uploads part of a file with Python's ftplib, then aborts it with
# FTP.abort(), which sends "ABOR\r\n" as TCP urgent data. Prints each reply.
# Usage: ftplib_abort.py HOST PORT USER PASSWORD PATH
import ftplib
import sys

host, port, user, password, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ftp = ftplib.FTP()
ftp.connect(host, port, timeout=30)
ftp.login(user, password)
ftp.voidcmd("TYPE I")
conn = ftp.transfercmd("STOR " + path)
conn.sendall(b"email\n" + b"someone@example.com\n" * 5000)
print("abort:", ftp.abort(), flush=True)
conn.close()
# After 426 for the transfer comes 226 for the ABOR itself.
print("then:", ftp.getresp(), flush=True)
print("noop:", ftp.voidcmd("NOOP"), flush=True)
ftp.quit()
