package k8sevents

import (
	"context"
	"fmt"
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
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   in.cfg.LeaseDuration,
			RenewDeadline:   in.cfg.RenewDeadline,
			RetryPeriod:     in.cfg.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            where,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					in.log.Infof("leader election: %s is now the leader (Lease %s): collecting", in.cfg.Identity, where)
					in.lead(ctx, lctx)
				},
				OnStoppedLeading: func() {
					if ctx.Err() == nil {
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
			in.log.Errorf("leader election: %v: not collecting", err)
			return
		}
		le.Run(ctx)
	}
}

// lead collects while lctx (leadership) lasts. It resumes from the checkpoint the
// last leader stored in the ConfigMap (else this node's database) and stores its own
// every checkpoint_interval, so that the next leader repeats at most that much.
func (in *Input) lead(ctx, lctx context.Context) {
	rv := in.sharedCheckpoint(lctx)
	if rv == "" {
		rv = in.localCheckpoint()
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
		in.collect(lctx, rv)
	}()
	t := time.NewTicker(in.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			store(lctx)
		case <-done:
			if ctx.Err() != nil {
				// Shutting down while still holding the Lease (it is released after
				// this returns): store the last checkpoint for the next leader.
				c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				store(c)
				cancel()
			}
			return
		}
	}
}

func (in *Input) checkpointName() string { return in.cfg.LeaseName + "-checkpoint" }

// sharedCheckpoint reads the last leader's checkpoint; "" if there is none yet.
func (in *Input) sharedCheckpoint(ctx context.Context) string {
	cm, err := in.cms.Get(ctx, in.checkpointName(), metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			in.log.Warnf("checkpoint: reading ConfigMap %s/%s: %v: resuming from this node's database", in.cfg.LeaseNamespace, in.checkpointName(), err)
		}
		return ""
	}
	in.log.Infof("checkpoint from ConfigMap %s/%s, stored by %s at %s", in.cfg.LeaseNamespace, in.checkpointName(), cm.Data[cmLeader], cm.Data[cmTime])
	return in.parseCheckpoint(cm.Data[cmCheckpoint], "ConfigMap "+in.checkpointName())
}

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
