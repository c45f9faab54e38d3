package main

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/gorilla/websocket"
)

func TestCleanClose(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{io.EOF, true},
		{fmt.Errorf("read: %w", io.EOF), true},
		{&websocket.CloseError{Code: websocket.CloseNormalClosure, Text: "STOMP died"}, true},
		{&websocket.CloseError{Code: websocket.CloseGoingAway}, true},
		{&websocket.CloseError{Code: websocket.CloseAbnormalClosure}, false},
		{io.ErrUnexpectedEOF, false},
		{errors.New("connection reset by peer"), false},
		{nil, false},
	} {
		if got := cleanClose(tc.err); got != tc.want {
			t.Errorf("cleanClose(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
