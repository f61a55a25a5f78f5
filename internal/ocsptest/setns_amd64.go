package ocsptest

// sysSetns is setns(2) on linux/amd64; package syscall does not export it.
const sysSetns = 308
