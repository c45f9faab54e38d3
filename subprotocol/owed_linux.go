//go:build linux

package subprotocol

import (
	"syscall"
	"unsafe"
)

const canWriteRaw = true

// writeRaw writes what the socket takes at once, without waiting for it
// to become writable: a full socket takes nothing and is no error.
func writeRaw(raw syscall.RawConn, p []byte) (int, error) {
	var n int
	var werr error
	err := raw.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), p)
			if werr != syscall.EINTR {
				break
			}
		}
		if werr == syscall.EAGAIN {
			n, werr = 0, nil
		}
		return true // never wait
	})
	if n < 0 {
		n = 0
	}
	if err != nil {
		return n, err
	}
	return n, werr
}

// maxIovecs is the most slices one writev takes (the kernel's UIO_MAXIOV).
const maxIovecs = 1024

// writevRaw is writeRaw for several slices, gathered in one system call;
// it reports the bytes written from the start of bufs.
func writevRaw(raw syscall.RawConn, bufs [][]byte) (int, error) {
	var small [16]syscall.Iovec
	iov := small[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if len(iov) == maxIovecs {
			break // the rest is owed
		}
		v := syscall.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	if len(iov) == 0 {
		return 0, nil
	}
	var n int
	var werr error
	err := raw.Write(func(fd uintptr) bool {
		for {
			r, _, errno := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			if errno == syscall.EINTR {
				continue
			}
			if errno != 0 && errno != syscall.EAGAIN {
				werr = errno
			}
			if errno == 0 {
				n = int(r)
			}
			return true // never wait
		}
	})
	if err != nil {
		return n, err
	}
	return n, werr
}
