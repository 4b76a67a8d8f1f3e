package k8sevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubetrail/kubetrail/state"
)

// Why a watch ended, besides the server closing it normally.
var (
	errGone = errors.New("resourceVersion too old (410 Gone): etcd compacted it")
	errIdle = errors.New("watch idle")
)

// newBackoff is the retry schedule after API errors: client-go's wait.Backoff, from
// 500ms doubling to 30s, with jitter so that a DaemonSet does not retry in step.
func newBackoff() wait.Backoff {
	return wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: 30 * time.Second}
}

// collect lists (when there is no resume point) then watches, until ctx ends.
//
// A WATCH resumes from the last resourceVersion seen (an Event or a bookmark); the
// API server ends each WATCH after kube_watch_timeout and the next one continues from
// there, without a LIST. Only 410 Gone (that resourceVersion was compacted away) forces
// a re-list, after which dedup drops what was already emitted.
//
// mayBeFirst is false when another instance may have collected before (a leadership
// term with a ConfigMap): then emit_existing off never applies.
func (in *Input) collect(ctx context.Context, rv string, mayBeFirst bool) {
	silent := rv == "" && !in.cfg.EmitExisting && mayBeFirst && in.firstStart()
	// A LIST that was not committed whole: the same snapshot again (the versions it
	// held may have changed since; a fresh LIST would only see the newest), then the
	// watch from it.
	exact := ""
	if r, ok := strings.CutPrefix(rv, silentListPrefix); ok {
		exact, rv, silent = r, "", true
	} else if r, ok := strings.CutPrefix(rv, listPrefix); ok {
		exact, rv = r, ""
	}
	switch {
	case exact != "":
		in.log.Infof("resuming the list at resourceVersion %s, which was not committed whole", exact)
	case rv != "":
		in.log.Infof("resuming the watch from resourceVersion %s", rv)
	}
	bo := newBackoff()
	for ctx.Err() == nil {
		if rv == "" {
			listRV, err := in.list(ctx, silent, exact)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if exact != "" && isGone(err) {
					in.log.Warnf("list at resourceVersion %s: %v: listing anew (versions that changed since that list began and were not yet sent are lost)", exact, err)
					exact = ""
					continue
				}
				in.apiFailed("list", err)
				sleep(ctx, bo.Step())
				continue
			}
			in.status.set("api", nil)
			rv, silent, exact = listRV, false, ""
			go in.freeAfterList(ctx)
		}
		start := time.Now()
		next, err := in.watch(ctx, rv)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errGone):
			in.stats.relists.Add(1)
			in.log.Infof("watch from resourceVersion %s: %v: re-listing (already emitted Events are not repeated)", rv, err)
			rv = ""
		case errors.Is(err, errIdle):
			in.log.Warnf("watch from resourceVersion %s delivered nothing for %s: restarting it", next, in.cfg.WatchIdleTimeout)
			rv = next
		case err != nil:
			in.apiFailed("watch", err)
			rv = next
			sleep(ctx, bo.Step())
		default: // closed by the server (kube_watch_timeout) or by the network
			rv = next
			if time.Since(start) < time.Second {
				sleep(ctx, bo.Step()) // closing at once, again and again: back off
			} else {
				bo = newBackoff()
			}
		}
	}
}

// freeAfterList returns the memory a LIST used to the OS once Fluent Bit has taken what
// it queued (or after a minute; the watch that follows queues its Events meanwhile): runtime/debug.FreeOSMemory collects and releases every
// free page at once, where the runtime's background scavenger would return it over
// minutes, or keep it up to the memory limit. A LIST is rare (the first sync, a 410),
// and one collection of the heap left (a few MB) takes milliseconds.
func (in *Input) freeAfterList(ctx context.Context) {
	for range 60 {
		if n, _ := in.q.len(); n == 0 {
			break
		}
		if sleep(ctx, time.Second); ctx.Err() != nil {
			return
		}
	}
	// The last batch taken is copied out in the same callback (Batch.MoveTo); one more
	// callback period and its records are garbage too.
	if sleep(ctx, 2*time.Second); ctx.Err() == nil {
		debug.FreeOSMemory()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Checkpoints of a LIST in progress: "list:<rv>" (or "silent-list:<rv>" with
// emit_existing off at the first start) is stored as soon as the list's snapshot is
// known, so that a restart before the whole list is committed lists the same snapshot
// again (resourceVersionMatch=Exact) and watches from it, instead of listing a newer
// one, which would miss the versions that changed in between.
const (
	listPrefix       = "list:"
	silentListPrefix = "silent-list:"
)

// startList begins a new stream at the snapshot listRV: what was in the queue or in
// Fluent Bit's hands before is still marked emitted once committed, but no longer moves
// the checkpoint (it can only be older: nothing before a LIST can be resumed from).
func (in *Input) startList(listRV string, silent bool) {
	cp := listPrefix + listRV
	if silent {
		cp = silentListPrefix + listRV
	}
	in.newStream()
	if err := in.store.Commit(nil, in.formatCheckpoint(cp), time.Now()); err != nil {
		in.stats.dbErrors.Add(1)
		in.status.set("db", fmt.Errorf("db: storing the checkpoint: %w", err))
	}
	in.committed.Store(&cp)
}

func isGone(err error) bool { return apierrors.IsResourceExpired(err) || apierrors.IsGone(err) }

// list reads every Event, page by page (kube_request_limit), queues the new ones and
// returns the list's resourceVersion, from which the watch continues. silent marks
// them emitted without emitting them (emit_existing off, first start). exact, when
// set, is the resourceVersion of the snapshot to read again.
//
// Each page is read as it arrives (listReader: one Event parsed at a time), and the
// next page is requested as soon as this one's continue token is read, so that the API
// server prepares it while this one is handled. Memory holds at most the page being
// read and the next one as far as it arrived: Go's HTTP/2 transport buffers a response
// only up to its stream flow-control window (4 MB, http2 transportDefaultStreamFlow)
// until it is read, and a 500-Event page is under 1 MB.
func (in *Input) list(ctx context.Context, silent bool, exact string) (string, error) {
	in.stats.lists.Add(1)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next chan pageBody // the next page, requested ahead
	defer func() {
		if next != nil {
			go func(c chan pageBody) { // cancel() ends its request; close what arrived
				if p := <-c; p.body != nil {
					p.body.Close()
				}
			}(next)
		}
	}()
	listRV, cont, n, items := "", "", 0, 0
	for {
		var p pageBody
		if next != nil {
			p, next = <-next, nil
		} else {
			p.body, p.err = in.openPage(lctx, cont, exact)
		}
		if p.err != nil {
			if apierrors.IsResourceExpired(p.err) && cont != "" {
				// The continue token outlived etcd's compaction: the pages start over;
				// what was queued is deduplicated.
				in.log.Infof("list: page %d expired (410): listing again from the start", n+1)
				listRV, cont = "", ""
				continue
			}
			return "", p.err
		}
		err := in.pages.read(p.body, func(m listMeta) error {
			if listRV == "" {
				if listRV = m.resourceVersion; listRV == "" {
					return errors.New("the API server returned a list without resourceVersion")
				}
				in.startList(listRV, silent)
			}
			if cont = m.cont; cont != "" {
				next = make(chan pageBody, 1)
				go func(c chan<- pageBody, cont string) {
					var p pageBody
					p.body, p.err = in.openPage(lctx, cont, exact)
					c <- p
				}(next, cont)
			}
			return nil
		}, func(raw []byte) error {
			v, err := in.itemParser.ParseBytes(raw)
			if err != nil {
				return fmt.Errorf("list page %d, item %d: %w", n+1, items+1, err)
			}
			items++
			return in.handle(ctx, v, silent, "")
		})
		p.body.Close()
		if err != nil {
			return "", err
		}
		n++
		if cont == "" {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := in.put(ctx, item{rv: listRV}); err != nil {
		return "", err
	}
	what := "listed"
	if silent {
		what = "listed (emit_existing off: marked emitted, not emitted)"
	}
	in.log.Infof("%s %d Events in %d pages at resourceVersion %s", what, items, n, listRV)
	return listRV, nil
}

// pageBody is one LIST page's response body, or why there is none.
type pageBody struct {
	body io.ReadCloser
	err  error
}

// openPage requests one page of the LIST (after cont; of the snapshot exact when set)
// and returns its body unread. Pages are read as the API's JSON (listReader): client-go's
// decoding into unstructured objects cost ~50 µs per Event, the largest part of a first
// sync (measured here); this is a few µs. The request goes through the REST client's
// own http.Client (its TLS, authentication and user agent); client-go's Request.Stream
// is not used because it turns an error response into a message without the API
// server's Status, which names the user and the missing permission.
func (in *Input) openPage(ctx context.Context, cont, exact string) (io.ReadCloser, error) {
	req := in.raw.Get().AbsPath(in.api.path(in.cfg.Namespace))
	if in.cfg.RequestLimit > 0 {
		req = req.Param("limit", strconv.FormatInt(in.cfg.RequestLimit, 10))
	}
	switch {
	case cont != "":
		req = req.Param("continue", cont)
	case exact != "":
		req = req.Param("resourceVersion", exact).Param("resourceVersionMatch", "Exact")
	}
	if in.cfg.FieldSelector != "" {
		req = req.Param("fieldSelector", in.cfg.FieldSelector)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, req.URL().String(), nil)
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Accept", "application/json")
	resp, err := in.raw.Client.Do(hr)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return nil, statusError(body, apierrors.NewGenericServerResponse(resp.StatusCode, "list",
		in.api.gvr.GroupResource(), "", strings.TrimSpace(string(body)), 0, true))
}

// statusError returns the API server's Status in body as the error (its message names
// the user and the missing permission), else err: the raw client leaves the Status
// undecoded ("unknown").
func statusError(body []byte, err error) error {
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" && st.Message != "" {
		return &apierrors.StatusError{ErrStatus: st}
	}
	return err
}

// watch follows the Events from rv until the server closes the watch, an error, 410,
// idleness or ctx. It returns the last resourceVersion seen, from which to resume.
func (in *Input) watch(ctx context.Context, rv string) (string, error) {
	timeout := int64(in.cfg.WatchTimeout / time.Second)
	w, err := in.res.Watch(ctx, metav1.ListOptions{
		ResourceVersion:     rv,
		AllowWatchBookmarks: true,
		TimeoutSeconds:      &timeout,
		FieldSelector:       in.cfg.FieldSelector,
	})
	if err != nil {
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return rv, errGone
		}
		return rv, err
	}
	defer w.Stop()
	in.stats.watches.Add(1)
	in.status.set("api", nil)
	in.log.Debugf("watching from resourceVersion %s", rv)

	idle := in.cfg.WatchIdleTimeout
	tick := time.NewTicker(max(min(idle/4, time.Minute), time.Second))
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return rv, ctx.Err()
		case <-tick.C:
			if idle > 0 && time.Since(last) > idle {
				return rv, errIdle
			}
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv, nil
			}
			next, err := in.watchEvent(ctx, ev)
			if err != nil {
				return rv, err
			}
			if next != "" {
				rv = next
			}
			last = time.Now() // after a put that may have waited for space
		}
	}
}

// watchEvent handles one watch event and returns its resourceVersion.
func (in *Input) watchEvent(ctx context.Context, ev watch.Event) (string, error) {
	if ev.Type == watch.Error {
		err := apierrors.FromObject(ev.Object)
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return "", errGone
		}
		return "", fmt.Errorf("watch error: %w", err)
	}
	u, ok := ev.Object.(*unstructured.Unstructured)
	if !ok {
		return "", fmt.Errorf("watch: unexpected object %T", ev.Object)
	}
	rv := u.GetResourceVersion()
	switch ev.Type {
	case watch.Added, watch.Modified:
		// Back to JSON, so that watched and listed Events take one path and come out
		// the same. Watched Events arrive one by one: the cost does not matter.
		b, err := u.MarshalJSON()
		if err != nil {
			return "", fmt.Errorf("watch: re-encoding an Event: %w", err)
		}
		v, err := in.watchParser.ParseBytes(b)
		if err != nil {
			return "", fmt.Errorf("watch: %w", err)
		}
		return rv, in.handle(ctx, v, false, rv)
	case watch.Bookmark:
		in.stats.bookmarks.Add(1)
	}
	// Deleted (TTL expiry: already emitted) and bookmarks: progress only.
	return rv, in.put(ctx, item{rv: rv})
}

// handle queues one Event version unless rules exclude it, it is older than the
// retention time, or it was already emitted. rv is the resume point once it is
// committed ("" inside a list: the list's marker follows).
func (in *Input) handle(ctx context.Context, obj *fastjson.Value, silent bool, rv string) error {
	key := state.Key{
		UID:             string(obj.GetStringBytes("metadata", "uid")),
		ResourceVersion: string(obj.GetStringBytes("metadata", "resourceVersion")),
	}
	// progress records rv when the Event itself is not queued (a LIST has no per-item
	// resume point: its marker follows the last page).
	progress := func() error {
		if rv == "" {
			return nil
		}
		return in.put(ctx, item{rv: rv})
	}
	if key.UID == "" || key.ResourceVersion == "" {
		in.stats.encodeErrors.Add(1)
		in.log.Warnf("skipping an Event without uid or resourceVersion: %s", describe(obj))
		return progress()
	}
	if !in.wanted(obj) {
		in.stats.filtered.Add(1)
		return progress()
	}
	t := in.api.recordTime(obj)
	if t.IsZero() {
		t = time.Now()
	}
	if t.Before(time.Now().Add(-in.cfg.RetentionTime)) {
		in.stats.expired.Add(1)
		return progress()
	}
	in.waitForCommits(ctx)
	fresh, err := in.reserve(key)
	if err != nil {
		// Unknown whether it was emitted: emitting risks a repeat, skipping a loss.
		in.status.set("db", fmt.Errorf("db: looking up %s: %w (emitting it)", describe(obj), err))
		fresh = true
	}
	if !fresh {
		in.stats.duplicates.Add(1)
		return progress()
	}
	it := item{key: key, rv: rv}
	if !silent {
		rec, err := in.coder.encode(obj, t)
		if err != nil {
			in.stats.encodeErrors.Add(1)
			in.log.Errorf("%v: skipped", err)
			in.release([]state.Key{key})
			return progress()
		}
		it.rec = rec
	}
	if err := in.put(ctx, it); err != nil {
		in.release([]state.Key{key})
		return err
	}
	if !silent {
		in.stats.sawEvent(t)
	}
	return nil
}

// wanted applies the include and exclude rules.
func (in *Input) wanted(obj *fastjson.Value) bool {
	if in.cfg.Include.Empty() && in.cfg.Exclude.Empty() {
		return true
	}
	var local [8]string // more than the rule fields: no allocation per Event
	f := in.api.facts(local[:0], obj)
	return (in.cfg.Include.Empty() || in.cfg.Include.Match(f, nil)) && !in.cfg.Exclude.Match(f, nil)
}

// apiFailed logs an API failure once per distinct error, naming what to fix.
func (in *Input) apiFailed(verb string, err error) {
	in.stats.apiError(apiErrorCode(err))
	in.status.set("api", in.explain(verb, err))
}

// explain turns an API error into a message that says what to do.
func (in *Input) explain(verb string, err error) error {
	where := "in all namespaces (a ClusterRole)"
	if in.cfg.Namespace != "" {
		where = "in namespace " + in.cfg.Namespace
	}
	group := in.api.gvr.Group
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s events: forbidden: RBAC must allow verbs list and watch on resource events of API group %q %s (see deploy/): %w", verb, group, where, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s events: unauthorized: the API server rejected the credentials (token file %s missing, expired or from another cluster?): %w", verb, in.rest.BearerTokenFile, err)
	}
	return fmt.Errorf("%s events from %s: %w (retrying with backoff)", verb, in.rest.Host, err)
}
