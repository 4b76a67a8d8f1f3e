package k8sevents

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Keys of the checkpoint ConfigMap's data.
const (
	cmCheckpoint = "checkpoint"
	cmLeader     = "leader"
	cmTime       = "time"
)

// runElected collects only while this instance holds the Lease (client-go's
// leaderelection), and campaigns again whenever it loses it, until ctx ends.
//
// Terms never overlap: client-go's Run returns when the renewal fails, possibly
// before OnStartedLeading (which it starts in a goroutine) has returned, so the next
// campaign waits for the last term to end (leadMu). The elector has a context of its
// own, ended only once the last term stored its checkpoint: ReleaseOnCancel then gives
// the Lease up after that store, not before.
func (in *Input) runElected(ctx context.Context) {
	coord, err := coordinationv1.NewForConfig(in.rest)
	if err == nil {
		var core *typedcorev1.CoreV1Client
		if core, err = typedcorev1.NewForConfig(in.rest); err == nil {
			in.cms = core.ConfigMaps(in.cfg.LeaseNamespace)
		}
	}
	if err != nil {
		in.log.Errorf("leader election: API client: %v: not collecting", err)
		return
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: in.cfg.LeaseNamespace, Name: in.cfg.LeaseName},
		Client:     coord,
		LockConfig: resourcelock.ResourceLockConfig{Identity: in.cfg.Identity},
	}
	where := in.cfg.LeaseNamespace + "/" + in.cfg.LeaseName
	var leadMu sync.Mutex
	var leading atomic.Bool
	for ctx.Err() == nil {
		ectx, stopElecting := context.WithCancel(context.Background())
		// Shutting down while campaigning: stop at once. While leading, the term
		// stops the elector itself once its checkpoint is stored.
		stopIdle := context.AfterFunc(ctx, func() {
			if !leading.Load() {
				stopElecting()
			}
		})
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   in.cfg.LeaseDuration,
			RenewDeadline:   in.cfg.RenewDeadline,
			RetryPeriod:     in.cfg.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            where,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					leadMu.Lock()
					defer leadMu.Unlock()
					if lctx.Err() != nil {
						return // a term that ended before it began: nothing to do
					}
					leading.Store(true)
					in.leading.Store(true)
					defer leading.Store(false)
					defer in.leading.Store(false)
					in.log.Infof("leader election: %s is now the leader (Lease %s): collecting", in.cfg.Identity, where)
					in.lead(ctx, lctx)
					if ctx.Err() != nil {
						stopElecting() // the checkpoint is stored: release the Lease
					}
				},
				OnStoppedLeading: func() {
					if ctx.Err() == nil && leading.Load() {
						in.log.Warnf("leader election: lost the Lease %s: stopped collecting, campaigning again", where)
					}
				},
				OnNewLeader: func(id string) {
					if id != in.cfg.Identity {
						in.log.Infof("leader election: %s leads (Lease %s): standing by", id, where)
					}
				},
			},
		})
		if err != nil {
			stopIdle()
			stopElecting()
			in.log.Errorf("leader election: %v: not collecting", err)
			return
		}
		le.Run(ectx)
		stopIdle()
		stopElecting()
		leadMu.Lock() // the term is over (or never began)
		leadMu.Unlock()
	}
}

// lead collects while lctx (leadership) lasts and ctx (the instance) runs. It resumes
// from the checkpoint the last leader stored in the ConfigMap (else this node's
// database) and stores its own every checkpoint_interval, so that the next leader
// repeats at most what this one handed to Fluent Bit since. The term is a stream of
// its own: only its batches move the checkpoint, which is reset for it.
func (in *Input) lead(ctx, lctx context.Context) {
	cctx, cancel := context.WithCancel(lctx)
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	in.newStream()
	in.committed.Store(nil)
	rv, mayBeFirst, ok := in.termCheckpoint(cctx)
	if !ok {
		return
	}
	stored := ""
	store := func(c context.Context) {
		if cur := in.committedRV(); cur != "" && cur != stored {
			if err := in.storeCheckpoint(c, cur); err != nil {
				in.status.set("checkpoint", err)
				return
			}
			in.status.set("checkpoint", nil)
			stored = cur
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		in.collect(cctx, rv, mayBeFirst)
	}()
	t := time.NewTicker(in.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			store(cctx)
		case <-done:
			// What is queued was not handed to Fluent Bit: the next leader sends it.
			in.dropQueued()
			if ctx.Err() != nil {
				// Shutting down while still holding the Lease (released once this
				// returns): store the last checkpoint for the next leader.
				c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				store(c)
				cancel()
			}
			return
		}
	}
}

// termCheckpoint reads the checkpoint a term resumes from: the ConfigMap's, stored by
// the last leader; without a ConfigMap (the first leader ever) this node's database's,
// and the ConfigMap is created at once, so that a later leader knows the cluster is
// past its first start (with emit_existing off it must not mark Events emitted that no
// leader sent). A ConfigMap that cannot be read is retried: collecting without it
// could skip Events. ok is false when ctx ended first.
func (in *Input) termCheckpoint(ctx context.Context) (rv string, mayBeFirst, ok bool) {
	bo := newBackoff()
	for ctx.Err() == nil {
		cm, err := in.cms.Get(ctx, in.checkpointName(), metav1.GetOptions{})
		if err == nil {
			in.status.set("checkpoint", nil)
			if cm.Data[cmCheckpoint] == "" {
				in.log.Infof("checkpoint ConfigMap %s/%s holds no checkpoint yet: listing", in.cfg.LeaseNamespace, in.checkpointName())
				return "", false, true
			}
			in.log.Infof("checkpoint from ConfigMap %s/%s, stored by %s at %s", in.cfg.LeaseNamespace, in.checkpointName(), cm.Data[cmLeader], cm.Data[cmTime])
			return in.parseCheckpoint(cm.Data[cmCheckpoint], "ConfigMap "+in.checkpointName()), false, true
		}
		if apierrors.IsNotFound(err) {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: in.checkpointName(), Namespace: in.cfg.LeaseNamespace},
				Data: map[string]string{cmLeader: in.cfg.Identity, cmTime: time.Now().UTC().Format(time.RFC3339)}}
			if _, err = in.cms.Create(ctx, cm, metav1.CreateOptions{}); err == nil {
				in.status.set("checkpoint", nil)
				return in.localCheckpoint(), true, true
			}
			if apierrors.IsAlreadyExists(err) {
				continue // created meanwhile: read it
			}
		}
		in.status.set("checkpoint", fmt.Errorf("checkpoint: reading ConfigMap %s/%s (RBAC: get, create, update on configmaps in %s): %w (retrying: collecting without it could skip Events)",
			in.cfg.LeaseNamespace, in.checkpointName(), in.cfg.LeaseNamespace, err))
		sleep(ctx, bo.Step())
	}
	return "", false, false
}

func (in *Input) checkpointName() string { return in.cfg.LeaseName + "-checkpoint" }

func (in *Input) storeCheckpoint(ctx context.Context, rv string) error {
	data := map[string]string{
		cmCheckpoint: in.formatCheckpoint(rv),
		cmLeader:     in.cfg.Identity,
		cmTime:       time.Now().UTC().Format(time.RFC3339),
	}
	cm, err := in.cms.Get(ctx, in.checkpointName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: in.checkpointName(), Namespace: in.cfg.LeaseNamespace}, Data: data}
		_, err = in.cms.Create(ctx, cm, metav1.CreateOptions{})
	case err == nil:
		cm.Data = data
		_, err = in.cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("checkpoint: storing it in ConfigMap %s/%s (RBAC: get, create, update on configmaps in %s): %w", in.cfg.LeaseNamespace, in.checkpointName(), in.cfg.LeaseNamespace, err)
	}
	return nil
}
