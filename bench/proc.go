package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// measure is what one child process (or in-process phase) cost.
type measure struct {
	Wall   time.Duration
	CPU    time.Duration // user + system of the child
	MaxRSS int64         // KiB, 0 when unknown
	DBCPU  time.Duration // the database server's CPU over the same time, 0 when unknown
	DB     dbDelta       // server status counters over the same time (every client's)
	Conn   userStats     // the benchmark's own connections over the same time
	SimCPU time.Duration // the simulator's CPU over the same time, when one runs
}

// dbDelta is the change of a few global status counters of the server:
// statements, InnoDB fsyncs, rows read, handler writes and COMMIT
// statements (MariaDB 10.11 names; MySQL lacks Rows_read and reports 0).
// Other clients of the same server count too.
type dbDelta struct{ Questions, Fsyncs, RowsRead, RowsWritten, Commits int64 }

func (d dbDelta) String() string {
	if d == (dbDelta{}) {
		return ""
	}
	return fmt.Sprintf("db: %d statements, %d fsyncs, %d rows read, %d row writes", d.Questions, d.Fsyncs, d.RowsRead, d.RowsWritten)
}

// dbStatus reads the counters of dbDelta (zero on error).
func (b *runner) dbStatus(ctx context.Context) dbDelta {
	if b.admin == nil {
		return dbDelta{}
	}
	rows, err := b.admin.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions','Innodb_data_fsyncs','Rows_read','Handler_write','Handler_update','Handler_delete','Com_commit')")
	if err != nil {
		return dbDelta{}
	}
	defer rows.Close()
	var d dbDelta
	for rows.Next() {
		var name string
		var v int64
		if rows.Scan(&name, &v) != nil {
			return dbDelta{}
		}
		switch name {
		case "Questions":
			d.Questions = v
		case "Innodb_data_fsyncs":
			d.Fsyncs = v
		case "Rows_read":
			d.RowsRead = v
		case "Com_commit":
			d.Commits = v
		default:
			d.RowsWritten += v
		}
	}
	return d
}

func (d dbDelta) sub(o dbDelta) dbDelta {
	return dbDelta{d.Questions - o.Questions, d.Fsyncs - o.Fsyncs, d.RowsRead - o.RowsRead, d.RowsWritten - o.RowsWritten, d.Commits - o.Commits}
}

// tail keeps the last max bytes written to it.
type tail struct {
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string { return strings.TrimSpace(string(t.b)) }

// child runs the wxcampaign binary with args and returns its stdout and
// what it cost (simPID > 0: the simulator's CPU too). A non-zero exit is
// an error carrying the end of stderr.
func (b *runner) child(ctx context.Context, simPID int, args ...string) ([]byte, measure, error) {
	cmd := exec.CommandContext(ctx, b.cfg.Binary, args...)
	cmd.Env = b.env
	var out bytes.Buffer
	errw := &tail{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = &out, errw
	db0, st0, u0 := serverCPU(b.dbPID), b.dbStatus(ctx), b.userStatus(ctx)
	var sim0 time.Duration
	if simPID > 0 {
		sim0 = serverCPU(simPID)
	}
	start := time.Now()
	err := cmd.Run()
	m := measure{Wall: time.Since(start)}
	if simPID > 0 {
		m.SimCPU = serverCPU(simPID) - sim0
	}
	m.DB = b.dbStatus(ctx).sub(st0)
	m.Conn = b.userStatus(ctx).sub(u0)
	if d := serverCPU(b.dbPID); d > 0 {
		m.DBCPU = d - db0
	}
	if ps := cmd.ProcessState; ps != nil {
		m.CPU = ps.UserTime() + ps.SystemTime()
		m.MaxRSS = maxRSS(ps)
	}
	if err != nil {
		return out.Bytes(), m, fmt.Errorf("bench: wxcampaign %s: %w: %s", subcommand(args), err, errw.String())
	}
	return out.Bytes(), m, nil
}

// sim is a simulator child process.
type sim struct {
	cmd  *exec.Cmd
	base string
	errw *tail
}

// startSim runs `wxcampaign wxsim` on a free loopback port with latency
// and waits until it answers.
func (b *runner) startSim(ctx context.Context, latency time.Duration) (*sim, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: simulator port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(b.cfg.Binary, "wxsim", "--config", b.cfgPath(0), "--listen", addr, "--templates", b.templates,
		"--appid", appID, "--lenient-credits", "--latency", latency.String())
	cmd.Env = b.env // the secret comes from WXC_WECHAT_SECRET
	s := &sim{cmd: cmd, base: "http://" + addr, errw: &tail{max: 8 << 10}}
	cmd.Stderr = s.errw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start simulator: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/admin/stats", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_, _ = s.stop()
			return nil, fmt.Errorf("bench: simulator did not answer on %s: %v %s", addr, err, s.errw.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop interrupts the simulator, waits for it and returns its CPU time
// and peak RSS.
func (s *sim) stop() (measure, error) {
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		err = <-done
	}
	var m measure
	if ps := s.cmd.ProcessState; ps != nil {
		m.CPU = ps.UserTime() + ps.SystemTime()
		m.MaxRSS = maxRSS(ps)
	}
	if err != nil {
		return m, fmt.Errorf("bench: simulator: %w: %s", err, s.errw.String())
	}
	return m, nil
}

// subcommand names a child for errors: its first argument that is not a
// flag or a flag's value (every flag the benchmark passes takes a value).
func subcommand(args []string) string {
	for i := 0; i < len(args); i++ {
		if strings.HasPrefix(args[i], "-") {
			i++
			continue
		}
		return args[i]
	}
	return "?"
}
