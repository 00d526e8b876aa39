package wxsim

import (
	"context"
	"net"
	"testing"
)

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx, cancel
}

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
