package ocsptest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
)

// dialInNamespace connects to addr (an IPv4 host:port) from inside the
// network namespace at nsPath. A socket belongs to the namespace it was
// created in, so only socket(2) runs in the namespace, on an OS thread locked
// for the purpose; connect and all I/O happen on ordinary goroutines.
func dialInNamespace(ctx context.Context, nsPath, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("ocsptest: dial %q: only IPv4 literal addresses are bridged", addr)
	}
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		fd, err := socketInNamespace(nsPath)
		ch <- result{fd, err}
	}()
	res := <-ch
	if res.err != nil {
		return nil, res.err
	}
	sa := &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	// Loopback connects complete (or fail) at once; no need for a poller.
	if err := syscall.Connect(res.fd, sa); err != nil {
		syscall.Close(res.fd)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
	}
	f := os.NewFile(uintptr(res.fd), "ocsptest-conn")
	defer f.Close()
	return net.FileConn(f)
}

// socketInNamespace returns a TCP socket created in the namespace at nsPath.
// It must run on its own goroutine: if the thread cannot be switched back,
// the goroutine exits still locked and the runtime discards the thread.
func socketInNamespace(nsPath string) (int, error) {
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return -1, err
	}
	defer self.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		runtime.UnlockOSThread()
		return -1, fmt.Errorf("ocsptest: responder namespace: %w", err)
	}
	defer target.Close()
	if err := setns(target); err != nil {
		runtime.UnlockOSThread()
		return -1, err
	}
	fd, sockErr := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err := setns(self); err != nil {
		// Leave the thread locked: it dies with this goroutine.
		if sockErr == nil {
			syscall.Close(fd)
		}
		return -1, err
	}
	runtime.UnlockOSThread()
	if sockErr != nil {
		return -1, os.NewSyscallError("socket", sockErr)
	}
	return fd, nil
}

func setns(f *os.File) error {
	_, _, e := syscall.RawSyscall(sysSetns, f.Fd(), syscall.CLONE_NEWNET, 0)
	if e != 0 {
		return os.NewSyscallError("setns", e)
	}
	return nil
}
