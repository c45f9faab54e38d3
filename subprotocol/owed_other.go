//go:build !linux

package subprotocol

import (
	"errors"
	"syscall"
)

const canWriteRaw = false

func writeRaw(syscall.RawConn, []byte) (int, error) { return 0, errors.ErrUnsupported }

func writevRaw(syscall.RawConn, [][]byte) (int, error) { return 0, errors.ErrUnsupported }
