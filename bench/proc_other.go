//go:build !linux

package bench

import (
	"os"
	"time"
)

func maxRSS(*os.ProcessState) int64 { return 0 }
func findServer(string) int         { return 0 }
func serverCPU(int) time.Duration   { return 0 }
func selfCPU() time.Duration        { return 0 }
