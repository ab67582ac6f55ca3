#!/bin/sh
# FTP uploads with curl to dropgate, to SFTPGo's FTP server and to a bare
# io.Copy receiver, interleaved in the same rounds, all on loopback
# (server/BENCHMARKS.md, issue 14.2).
#
#   server/ftp/bench/sftpgo_compare.sh /path/to/sftpgo [/path/to/sftpgo-source]
#
# The SFTPGo source tree (its templates/ and static/ folders, which SFTPGo
# reads at start) defaults to the binary's folder. Build SFTPGo outside this
# repository, for example from its source tree:
#
#   go build -trimpath -tags nogcs,nos3,noazblob,nobolt,nomysql,nopgsql,nosqlite,nometrics -o sftpgo .
#
# DROPGATE_BENCH_RUNS (rounds, default 5) and DROPGATE_BENCH_BYTES (upload
# size, default 512 MiB) pass through.
set -eu
if [ $# -lt 1 ]; then
	echo "usage: $0 /path/to/sftpgo [/path/to/sftpgo-source]" >&2
	exit 2
fi
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=${2:-$(dirname "$bin")}
src=$(cd "$src" && pwd)
cd "$(dirname "$0")/../../.."
echo "load: $(cat /proc/loadavg)"
DROPGATE_BENCH_SFTPGO=$bin DROPGATE_BENCH_SFTPGO_SRC=$src \
	go test ./server/ftp -run '^$' -bench 'FTPUploadVsIOCopy$' -benchtime 1x -timeout 60m
echo "load: $(cat /proc/loadavg)"
