package auditreport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/kubetrail/kubetrail/enrich"
	"github.com/kubetrail/kubetrail/test/auditgen"
	"github.com/kubetrail/kubetrail/test/repo"
)

// pageData pulls the JSON the page is built from out of a written report.
func pageData(t *testing.T, html []byte) page {
	t.Helper()
	m := regexp.MustCompile(`(?s)<script id="report-data" type="application/json">(.*?)</script>`).FindSubmatch(html)
	if m == nil {
		t.Fatal("no report data in the page")
	}
	var p page
	if err := json.Unmarshal(m[1], &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeReport(t *testing.T, r *Report) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestReportNumbers checks the report's totals against an independent count of the
// generated log: 401s by source IP, 403s by user, users, and the stacked rate chart
// adds up to every record with a time.
func TestReportNumbers(t *testing.T) {
	data, st := generated(t, auditgen.Options{Seed: 21, Records: 40000, Nodes: 60})
	r := NewReport(ReportOptions{})
	lines := feed(t, data, r)
	html := writeReport(t, r)
	if !bytes.Contains(html, []byte("Chart.js v4.6.1")) || bytes.Contains(html, []byte("src=\"http")) {
		t.Error("Chart.js not inlined, or an external script")
	}
	p := pageData(t, html)

	by401, by403 := map[string]int{}, map[string]int{}
	for _, l := range lines {
		e := decode(t, l)
		switch e.code() {
		case 401:
			by401[e.SourceIPs[0]]++
		case 403:
			by403[e.user()]++
		}
	}
	eqCounts(t, "401 by IP", barCounts(t, p, "ips401"), by401)
	eqCounts(t, "401 by IP (generator)", barCounts(t, p, "ips401"), st.Unauthorized)
	eqCounts(t, "403 by user", barCounts(t, p, "users403"), by403)

	// The stacked chart: rates times the bucket width give back every record.
	c := findChart(t, p, "rps-groups")
	width := r.time.width
	total := 0.0
	var cfg struct {
		Data struct {
			Labels   []string
			Datasets []struct {
				Label string
				Data  []float64
			}
		}
	}
	remarshal(t, c.Config, &cfg)
	// The width is the smallest of the ladder that covers the span in 360 buckets (the
	// span is more than the hour: streams seen at their end began earlier).
	span := st.Last.Unix() - st.First.Unix() + 1
	n := int64(len(cfg.Data.Labels))
	if n > 360 || n*width < span || span <= 360*ladder[slices.Index(ladder, width)-1] {
		t.Errorf("%d buckets of %d s for a span of %d s", n, width, span)
	}
	if len(cfg.Data.Datasets) != 9 || cfg.Data.Datasets[8].Label != "(other)" {
		t.Errorf("%d series, want 8 groups + (other)", len(cfg.Data.Datasets))
	}
	for _, ds := range cfg.Data.Datasets {
		for _, v := range ds.Data {
			total += v * float64(width)
		}
	}
	// Rates carry three significant digits: the sum is within 0.1%.
	if math.Abs(total-float64(len(lines))) > 0.001*float64(len(lines)) {
		t.Errorf("stacked chart sums to %.1f requests, log has %d", total, len(lines))
	}
	// Behind the rates, the buckets count exactly.
	inBuckets := 0
	for _, b := range r.time.buckets {
		for _, n := range b.groups {
			inBuckets += n
		}
	}
	if inBuckets != len(lines) {
		t.Errorf("buckets hold %d requests, log has %d", inBuckets, len(lines))
	}
	for _, ch := range p.Charts {
		if ch.Config == nil {
			t.Errorf("chart %s has no data: %s", ch.ID, ch.Empty)
		}
	}
}

func barCounts(t *testing.T, p page, id string) map[string]int {
	t.Helper()
	var cfg struct {
		Data struct {
			Labels   []string
			Datasets []struct{ Data []int }
		}
	}
	remarshal(t, findChart(t, p, id).Config, &cfg)
	out := map[string]int{}
	for i, l := range cfg.Data.Labels {
		out[l] = cfg.Data.Datasets[0].Data[i]
	}
	return out
}

func findChart(t *testing.T, p page, id string) chart {
	t.Helper()
	for _, c := range p.Charts {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no chart %s", id)
	return chart{}
}

func remarshal(t *testing.T, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

// eqCounts compares a top-20 bar chart with the full independent count: every bar
// exact, and the bars are the largest keys.
func eqCounts(t *testing.T, what string, bars, want map[string]int) {
	t.Helper()
	if len(bars) != min(20, len(want)) {
		t.Errorf("%s: %d bars, %d keys", what, len(bars), len(want))
	}
	smallest := int(^uint(0) >> 1)
	for k, v := range bars {
		if want[k] != v {
			t.Errorf("%s[%s]: %d, independent %d", what, k, v, want[k])
		}
		smallest = min(smallest, v)
	}
	for k, v := range want {
		if _, shown := bars[k]; !shown && v > smallest {
			t.Errorf("%s: %s (%d) left out while a bar of %d is shown", what, k, v, smallest)
		}
	}
}

// TestTimelineWidens feeds three days of records: the buckets widen so that at most
// MaxBuckets remain, and no request is lost in the merges.
func TestTimelineWidens(t *testing.T) {
	var tl timeline
	tl.init(100)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()
	n := 0
	for s := int64(0); s < 3*86400; s += 7 {
		tl.add(start+s, 0, 200)
		n++
	}
	tl.add(start-1, 0, 200) // one earlier record, out of order
	n++
	if tl.width != 3600 {
		t.Errorf("width %d s for 3 days in 100 buckets, want 3600", tl.width)
	}
	if tl.hi-tl.lo+1 > 100 || len(tl.buckets) > 100 {
		t.Errorf("%d buckets", tl.hi-tl.lo+1)
	}
	sum := 0
	for _, b := range tl.buckets {
		sum += b.n
	}
	if sum != n {
		t.Errorf("%d in buckets, %d added", sum, n)
	}
}

func TestReportMaxKeys(t *testing.T) {
	r := NewReport(ReportOptions{MaxKeys: 10})
	for i := range 1000 {
		s := enrich.Summary{User: []byte(fmt.Sprintf("user-%d", i)), Verb: []byte("get"), Code: 200}
		r.Add(&s)
	}
	if len(r.users.m) != 11 || r.users.m[keyOther].n != 990 {
		t.Errorf("%d user keys, other %v", len(r.users.m), r.users.m[keyOther])
	}
	if !strings.Contains(string(writeReport(t, r)), "More than 10 distinct keys") {
		t.Error("no note of the folded keys")
	}
}

func TestReportEdgeCases(t *testing.T) {
	// No records: a page that says so.
	p := pageData(t, writeReport(t, NewReport(ReportOptions{})))
	if len(p.Charts) != 0 || !strings.Contains(strings.Join(p.Header, " "), "No records") {
		t.Errorf("empty report: %+v", p)
	}
	// Records without time or duration: totals, no time charts, no latency charts.
	r := NewReport(ReportOptions{})
	r.Add(&enrich.Summary{User: []byte("alice"), Verb: []byte("get"), Code: 403, GroupResource: []byte("secrets")})
	p = pageData(t, writeReport(t, r))
	if c := findChart(t, p, "rps-groups"); c.Config != nil || c.Empty == "" {
		t.Errorf("time chart without times: %+v", c)
	}
	if c := findChart(t, p, "lat-verbs"); c.Config != nil {
		t.Errorf("latency chart without durations: %+v", c)
	}
	if got := barCounts(t, p, "users403"); got["alice"] != 1 {
		t.Errorf("403 by user %v", got)
	}
	if !strings.Contains(strings.Join(p.Header, " "), "1 records without requestReceivedTimestamp") {
		t.Errorf("header %q", p.Header)
	}
}

// chromium finds the browser; the test skips without one, except in CI.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	repo.Missing(t, "chromium (the HTML report's browser test)", "`make setup` (apt-get install chromium)")
	return ""
}

// TestReportInChromium opens a report of a generated hour of a busy cluster in
// headless Chromium: no console error or exception, every chart drawn with data, a
// screenshot that is not blank (saved to $KUBETRAIL_REPORT_SCREENSHOT when set), and
// the tables sort.
func TestReportInChromium(t *testing.T) {
	bin := chromium(t)
	data, _ := generated(t, auditgen.Options{Seed: 2019, Records: 60000, Nodes: 250})
	r := NewReport(ReportOptions{Sources: []string{"generated: 60000 records, 250 nodes"}})
	feed(t, data, r)
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, writeReport(t, r), 0o644); err != nil {
		t.Fatal(err)
	}
	checkInBrowser(t, bin, file, os.Getenv("KUBETRAIL_REPORT_SCREENSHOT"))
}

// TestCorpusReportInChromium opens the report of the shared corpus: charts without
// data (no 401s, few durations) must render their note, not an error.
func TestCorpusReportInChromium(t *testing.T) {
	bin := chromium(t)
	r := NewReport(ReportOptions{})
	feed(t, corpus(t), r)
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, writeReport(t, r), 0o644); err != nil {
		t.Fatal(err)
	}
	checkInBrowser(t, bin, file, "")
}

func checkInBrowser(t *testing.T, bin, file, shot string) {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	var mu sync.Mutex
	var problems []string
	note := func(p string) {
		mu.Lock()
		problems = append(problems, p)
		mu.Unlock()
	}
	// The listener sees every console call and uncaught exception from the tab's start.
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				note(fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			note(fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				note("browser log: " + ev.Entry.Text)
			}
		}
	}))
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser (no timeout on this first call)
		t.Fatalf("starting %s: %v", bin, err)
	}
	tctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	type chartInfo struct {
		ID     string `json:"id"`
		Points int    `json:"points"`
		Height int    `json:"height"`
	}
	if err := chromedp.Do(tctx, chromedp.Navigate("file://"+file),
		chromedp.Poll[chromedp.Void](`window.kubetrailReportReady === true`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("loading the report: %v", err)
	}
	eval := func(expr string, out any) {
		t.Helper()
		raw, err := chromedp.Run(tctx, chromedp.Evaluate[[]byte](expr))
		if err == nil {
			err = json.Unmarshal(raw, out)
		}
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
	}
	var charts []chartInfo
	var canvases, emptyNotes, cards int
	eval(`Object.values(Chart.instances).map(c => ({id: c.canvas.id, height: c.height,
		points: c.data.datasets.reduce((n, d) => n + d.data.filter(v => v != null && v !== 0).length, 0)}))`, &charts)
	eval(`document.querySelectorAll("canvas").length`, &canvases)
	eval(`document.querySelectorAll("#charts .empty").length`, &emptyNotes)
	eval(`document.querySelectorAll("#charts .card").length`, &cards)
	png1, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// Sorting the latency table by p99 (one click: descending) puts the largest first.
	var sorted bool
	if err := chromedp.Do(tctx, chromedp.Click(`#t-latency th:nth-child(8)`)); err != nil {
		t.Fatalf("click: %v", err)
	}
	eval(`(() => { const v = [...document.querySelectorAll("#t-latency tbody tr td:nth-child(8)")]
		.map(td => td.textContent === "-" ? -1 : parseFloat(td.textContent.replace(/,/g, "")));
		return v.length > 1 && v.every((x, i) => i === 0 || v[i-1] >= x || x === -1); })()`, &sorted)
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	if len(charts) == 0 || len(charts) != canvases || len(charts)+emptyNotes != cards {
		t.Errorf("%d Chart instances, %d canvases, %d empty notes, %d cards", len(charts), canvases, emptyNotes, cards)
	}
	for _, c := range charts {
		if c.Points == 0 || c.Height < 100 {
			t.Errorf("chart %s: %d data points, %d px high", c.ID, c.Points, c.Height)
		}
	}
	if !sorted {
		t.Error("latency table not sorted by p99 after a click")
	}
	img, err := png.Decode(bytes.NewReader(png1))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	colours, coloured := pixelStats(img)
	if colours < 50 || coloured < 0.05 {
		t.Errorf("screenshot looks blank: %d distinct colours, %.1f%% non-white, non-grey pixels", colours, coloured*100)
	}
	t.Logf("%d charts (%d without data), screenshot %dx%d, %d colours, %.1f%% coloured",
		len(charts), emptyNotes, img.Bounds().Dx(), img.Bounds().Dy(), colours, coloured*100)
	if shot != "" {
		if err := os.WriteFile(shot, png1, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot in %s", shot)
	}
}

// pixelStats counts distinct colours and the share of saturated (chart-coloured) pixels.
func pixelStats(img image.Image) (int, float64) {
	seen := map[uint32]bool{}
	b := img.Bounds()
	sat, n := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			seen[r<<16|g<<8|bl] = true
			if max(r, g, bl)-min(r, g, bl) > 40 {
				sat++
			}
			n++
		}
	}
	return len(seen), float64(sat) / float64(n)
}
