package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/kubetrail/kubetrail/cmd/kubetrail/internal/auditlog"
)

// isTerminal reports whether w is a terminal (a character device), where a progress
// line that rewrites itself is welcome; pipes, files and tests get none unless asked.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// startProgress prints, twice a second, the bytes read so far (of the total when
// known) and the read rate on one rewritten stderr line; the returned function stops
// it and prints the final figures.
func startProgress(w io.Writer, r *auditlog.Reader) (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	line := func(final bool) {
		read := r.BytesRead()
		secs := time.Since(start).Seconds()
		rate := 0.0
		if secs > 0 {
			rate = float64(read) / 1e6 / secs
		}
		msg := fmt.Sprintf("read %.1f MB", float64(read)/1e6)
		if total := r.TotalBytes(); total > 0 {
			msg += fmt.Sprintf(" of %.1f MB (%d%%)", float64(total)/1e6, read*100/total)
		}
		msg += fmt.Sprintf(", %.1f MB/s", rate)
		if final {
			msg += fmt.Sprintf(" in %.1fs\n", secs)
		}
		fmt.Fprintf(w, "\r\033[Kkubetrail audit: %s", msg)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				line(false)
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		line(true)
	}
}
