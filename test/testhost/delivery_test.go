package testhost_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestInputKillWhileFluentBitHoldsBatches kills the host at the two moments when a
// batch has left the plugin but is in no chunk yet, and restarts it: no acknowledged
// Event version may be lost.
//
//   - ring: the engine is busy for 1.5 s (--stall-at-ms/--stall-ms): appends and
//     cleanups go on, the ring fills, nothing reaches the output; the kill comes 1 s
//     into it. A plugin that commits in the cleanup callback has marked those
//     batches emitted: lost. They must come again after the restart (repeated).
//   - append: every append comes 0.8 s after its callback returned
//     (--append-delay-ms; the callbacks every 0.2 s): the kill most likely lands
//     between a callback and its append. A plugin that commits in the callback has
//     marked that batch emitted: lost.
func TestInputKillWhileFluentBitHoldsBatches(t *testing.T) {
	for _, tc := range []struct {
		name       string
		flags      []string
		killAfter  time.Duration // after the run's first records
		wantRepeat bool
	}{
		{"ring", []string{"--stall-at-ms", "5000", "--stall-ms", "1500"}, 0, true},
		{"append", []string{"--append-delay-ms", "800"}, 2100 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEvCluster(t)
			out := filepath.Join(e.dir, "out.jsonl")
			props := e.props(e.tokenFile, filepath.Join(e.dir, "events.db"))
			s := e.startStreamer("kd", 30)
			defer s.stop()
			h := startInputArgs(t, "killed", out, filepath.Join(e.dir, "killed.log"), props, tc.flags)
			began := time.Now()
			waitUntil(t, "records", inputWait, func() (bool, string) {
				if h.exited() {
					t.Fatalf("exited: %v\n%s", h.err, h.log())
				}
				return fileSize(out) > 0, "no records yet"
			})
			if tc.killAfter > 0 {
				time.Sleep(tc.killAfter)
			} else {
				// 1 s into the engine's stall, which began 5 s after the init
				time.Sleep(time.Until(began.Add(6 * time.Second)))
				before := fileSize(out)
				time.Sleep(300 * time.Millisecond)
				if fileSize(out) != before {
					t.Fatalf("the output grew during the engine's stall: the host does not stall")
				}
			}
			_ = h.cmd.Process.Kill()
			if c := h.code(inputWait); c != -1 {
				t.Fatalf("exit code %d, want death by SIGKILL", c)
			}
			killedAt := time.Now()
			if !strings.Contains(h.log(), "delivery: ring buffer") {
				t.Errorf("the plugin did not log its delivery mode as ring buffer:\n%s", h.log())
			}
			final := startInput(t, "final", out, filepath.Join(e.dir, "final.log"), props)
			time.Sleep(2 * time.Second)
			s.stop()
			res := e.waitAll(t, inputWait, out)
			time.Sleep(2 * time.Second)
			final.term()
			res = e.tally(t, out)
			t.Logf("%s: killed %v after start; %d versions acknowledged, %d lost, %d repeated",
				tc.name, killedAt.Sub(began).Round(time.Millisecond), res.acked, res.lost, res.repeated)
			if res.lost > 0 {
				sort.Slice(res.lostAt, func(i, j int) bool { return res.lostAt[i].Before(res.lostAt[j]) })
				t.Errorf("%d of %d acknowledged versions lost (committed before Fluent Bit held them), acknowledged %v to %v before the kill",
					res.lost, res.acked, killedAt.Sub(res.lostAt[0]).Round(time.Millisecond), killedAt.Sub(res.lostAt[len(res.lostAt)-1]).Round(time.Millisecond))
			}
			if tc.wantRepeat && res.repeated == 0 {
				t.Errorf("nothing repeated: the batches the ring held at the kill were not sent again")
			}
		})
	}
}

// TestInputThreadedOff runs the input as Fluent Bit does with `threaded off` (on the
// engine thread, the chunk written before the cleanup callback): the plugin commits at
// cleanup, so kill -9 right after records appear, then a clean stop, repeat nothing
// beyond the batch being written, and the clean stop repeats nothing at all.
func TestInputThreadedOff(t *testing.T) {
	e := newEvCluster(t)
	out := filepath.Join(e.dir, "out.jsonl")
	props := append(e.props(e.tokenFile, filepath.Join(e.dir, "events.db")), "threaded=off")
	s := e.startStreamer("off", 30)
	defer s.stop()
	for i := 0; i < 3; i++ {
		h := startInput(t, fmt.Sprintf("run %d", i), out, filepath.Join(e.dir, fmt.Sprintf("run%d.log", i)), props)
		size := fileSize(out)
		waitUntil(t, "records", inputWait, func() (bool, string) {
			if h.exited() {
				t.Fatalf("exited: %v\n%s", h.err, h.log())
			}
			return fileSize(out) > size, "no records yet"
		})
		if !strings.Contains(h.log(), "delivery: synchronous") {
			t.Fatalf("the plugin did not see threaded off:\n%s", h.log())
		}
		time.Sleep(1500 * time.Millisecond)
		if i < 2 {
			_ = h.cmd.Process.Kill()
			h.code(inputWait)
			continue
		}
		time.Sleep(time.Second)
		s.stop()
		res := e.waitAll(t, inputWait, out)
		time.Sleep(2 * time.Second)
		h.term()
		if b, _ := os.ReadFile(h.logPath); strings.Contains(string(b), "not committed") {
			t.Errorf("threaded off left batches uncommitted at exit:\n%s", b)
		}
		res = e.tally(t, out)
		t.Logf("threaded off: 2 kill -9 and a clean stop: %d versions acknowledged, %d lost, %d repeated", res.acked, res.lost, res.repeated)
		if res.lost > 0 {
			t.Errorf("%d of %d versions lost", res.lost, res.acked)
		}
		// 30 versions/s, one callback a second: a kill in the instant between a chunk
		// write and its commit repeats one batch (about 30); nothing else repeats.
		if res.repeated > 2*30 {
			t.Errorf("%d versions repeated: more than one batch per kill", res.repeated)
		}
	}
}

// TestInputBackPressure: Fluent Bit pauses the input (the engine stops draining its
// ring, then FLBPluginInputPause) and later resumes it; with a ring of one slot and the
// engine busy for 3 s the ring is full, the append gives up after ten tries ("could not
// enqueue records into the ring buffer") and the batch is gone from Fluent Bit. Nothing
// may be lost; with threaded off, whose pause is synchronous, nothing repeated either
// (a clean stop included).
func TestInputBackPressure(t *testing.T) {
	for _, tc := range []struct {
		name      string
		props     []string
		flags     []string
		noRepeats bool
		wantDrop  bool
	}{
		{"threaded pause", nil, []string{"--pause-at-ms", "4000", "--pause-ms", "3000"}, false, false},
		{"threaded full ring", []string{"thread.ring_buffer.capacity=1"}, []string{"--stall-at-ms", "4000", "--stall-ms", "3000"}, false, true},
		{"threaded off pause", []string{"threaded=off"}, []string{"--pause-at-ms", "4000", "--pause-ms", "3000"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEvCluster(t)
			out := filepath.Join(e.dir, "out.jsonl")
			props := append(e.props(e.tokenFile, filepath.Join(e.dir, "events.db")), tc.props...)
			s := e.startStreamer("bp", 30)
			defer s.stop()
			h := startInputArgs(t, "host", out, filepath.Join(e.dir, "host.log"), props, tc.flags)
			time.Sleep(9 * time.Second) // past the pause or stall
			s.stop()
			res := e.waitAll(t, inputWait, out)
			time.Sleep(2 * time.Second)
			h.term()
			res = e.tally(t, out)
			log := h.log()
			t.Logf("%s: %d versions acknowledged, %d lost, %d repeated", tc.name, res.acked, res.lost, res.repeated)
			if res.lost > 0 {
				t.Errorf("%d of %d versions lost", res.lost, res.acked)
			}
			if tc.noRepeats && res.repeated > 0 {
				t.Errorf("%d versions repeated", res.repeated)
			}
			if tc.wantDrop {
				if !strings.Contains(log, "could not enqueue records into the ring buffer") {
					t.Fatalf("the ring never filled: the test proves nothing\n%s", log)
				}
				if !strings.Contains(log, "handing them over again") {
					t.Errorf("the plugin did not hand the dropped batch over again")
				}
			}
		})
	}
}
