package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wxcampaign/wxcampaign/bench"
)

func benchCmd(g *globals) *cobra.Command {
	var (
		cfg       bench.Config
		grants    int
		sizes     string
		latencies string
		baseline  float64
		wire      float64
		phases    string
		dsn       string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "End-to-end benchmark on MariaDB (or SQLite) and the simulator: import, preview, send and the one-at-a-time baseline",
		Long: `bench creates a fresh database (wxc_bench), a products table and N grants
with a known eligible share, then runs this binary as child processes:
grants import, preview of the price-drop campaign, and send against the
simulator (also a child) at each latency, preceded by the wire ceiling
(a Go client and the simulator alone, same latency and concurrency) and
followed by the baseline loop a team would write from WeChat's samples.
It checks every count, prints the tables (totals, cost per unit) and
writes them to --out/results.md.

An existing database of the --database name is dropped only when it holds
the benchmark's marker table (wxc_bench_marker), i.e. an earlier bench made
it; otherwise bench refuses unless --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if sizes != "" {
				if cfg.Sizes, err = bench.ParseSizes(sizes); err != nil {
					return &exitError{code: 2, err: err}
				}
			} else {
				cfg.Sizes = []int{grants}
			}
			if cfg.Latencies, err = bench.ParseLatencies(latencies); err != nil {
				return &exitError{code: 2, err: err}
			}
			cfg.Baseline = time.Duration(baseline * float64(time.Second))
			if baseline <= 0 {
				cfg.Baseline = -1
			}
			cfg.Wire = time.Duration(wire * float64(time.Second))
			if wire <= 0 {
				cfg.Wire = -1
			}
			cfg.ServerDSN = dsn
			if phases != "" {
				cfg.Phases = strings.Split(phases, ",")
			}
			if cfg.ServerDSN == "" {
				cfg.ServerDSN = g.getenv("WXC_MYSQL_DSN")
			}
			if cfg.Binary, err = os.Executable(); err != nil {
				return &exitError{code: 1, err: fmt.Errorf("bench: own executable: %w", err)}
			}
			cfg.Log = g.stderr
			res, err := bench.Run(cmd.Context(), cfg)
			if res != nil {
				fmt.Fprintln(g.stdout, res.Table())
				fmt.Fprintf(g.stdout, "results: %s/results.md\n", cfg.Out)
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&grants, "grants", 1_000_000, "grants to generate (one size; see --sizes)")
	f.StringVar(&sizes, "sizes", "", "comma-separated grant counts, a full run each (e.g. 100000,1000000); overrides --grants")
	f.IntVar(&cfg.Products, "products", 100_000, "products in the products table")
	f.Float64Var(&cfg.Eligible, "eligible", 0.3, "share of grants the price-drop rule holds for")
	f.StringVar(&latencies, "latency", "0,50ms", "comma-separated simulator latencies")
	f.IntVar(&cfg.Concurrency, "concurrency", 0, "sends in flight (0 = sized for the latency: 64 at 0 ms, 512 at 50 ms)")
	f.StringVar(&cfg.Driver, "driver", "mysql", "the store: mysql (the server at --mysql) or sqlite (a file in --out named after --database)")
	f.StringVar(&dsn, "mysql", "", "MariaDB server DSN (default WXC_MYSQL_DSN or root@tcp(127.0.0.1:3306)/test); the database part is replaced")
	f.StringVar(&cfg.Database, "database", "wxc_bench", "database to create, use and drop (an existing one only if the benchmark made it; see --force)")
	f.BoolVar(&cfg.Force, "force", false, "drop an existing --database even when the benchmark did not create it")
	f.BoolVar(&cfg.Keep, "keep", false, "keep the database and the grants file")
	f.Float64Var(&baseline, "baseline-seconds", 20, "how long the baseline runs at each latency (0 = skip)")
	f.Float64Var(&wire, "wire-seconds", 10, "at most how long the wire ceiling (Go client and simulator only) runs before each send (0 = skip)")
	f.StringVar(&phases, "phases", "", "phases, comma-separated: import (always runs), preview, send (with the wire ceiling and the baseline); default all")
	f.StringVar(&cfg.Campaign, "campaign", "configs/campaigns/price-drop.yaml", "the price-drop campaign file")
	f.IntVar(&cfg.BatchSize, "batch-size", 0, "override the campaign's batch_size (experiment; 0 = the file's)")
	f.StringVar(&cfg.Out, "out", "bench-results", "results folder (results.md, results.json, profiles)")
	f.BoolVar(&cfg.Profile, "profile", false, "write CPU and heap profiles of preview and send to --out/profiles")
	return cmd
}

// profiler writes the CPU and heap profiles of one command, behind the
// hidden --cpuprofile and --memprofile flags (used by bench --profile).
type profiler struct {
	cpu, mem string
	f        *os.File
}

// addProfileFlags adds the hidden profile flags to root and starts the CPU
// profile before any command runs; call stop after Execute.
func addProfileFlags(root *cobra.Command) *profiler {
	p := &profiler{}
	pf := root.PersistentFlags()
	pf.StringVar(&p.cpu, "cpuprofile", "", "write a CPU profile to this file")
	pf.StringVar(&p.mem, "memprofile", "", "write a heap profile to this file at exit")
	_ = pf.MarkHidden("cpuprofile")
	_ = pf.MarkHidden("memprofile")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if p.cpu == "" {
			return nil
		}
		f, err := os.Create(p.cpu)
		if err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("cpuprofile: %w", err)
		}
		p.f = f
		return nil
	}
	return p
}

// stop ends the CPU profile and writes the heap profile.
func (p *profiler) stop() error {
	var errs []error
	if p.f != nil {
		pprof.StopCPUProfile()
		errs = append(errs, p.f.Close())
		p.f = nil
	}
	if p.mem != "" {
		f, err := os.Create(p.mem)
		if err != nil {
			return fmt.Errorf("memprofile: %w", err)
		}
		runtime.GC()
		errs = append(errs, pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
	}
	return errors.Join(errs...)
}
