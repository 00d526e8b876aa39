package wxsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"
)

// ListenAndServe runs a simulator for cfg on addr until ctx ends, then shuts
// it down gracefully (pending pushes get the rest of the 5 s grace period). It backs `wxcampaign wxsim --listen ADDR --templates FILE`.
func ListenAndServe(ctx context.Context, addr string, cfg Config, log logrus.FieldLogger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("wxsim: listen %s: %w", addr, err)
	}
	return Serve(ctx, ln, cfg, log)
}

// Serve is ListenAndServe on an open listener (use port 0 in tests); it
// closes ln when it returns.
func Serve(ctx context.Context, ln net.Listener, cfg Config, log logrus.FieldLogger) error {
	s, err := New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer s.Close()
	if log == nil {
		l := logrus.New()
		l.SetLevel(logrus.PanicLevel)
		log = l
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	log.WithFields(logrus.Fields{"addr": ln.Addr().String(), "appid": cfg.AppID, "templates": len(cfg.Templates), "push": cfg.PushURL != ""}).Info("wxsim: serving the WeChat simulator")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("wxsim: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := s.FlushPushes(sctx); err != nil {
		log.WithError(err).Warn("wxsim: pushes left unsent at shutdown")
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("wxsim: serve: %w", err)
	}
	log.Info("wxsim: stopped")
	return nil
}
