package node

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"lbd/config"
)

// ErrReloadRefused wraps every reason a reload was not applied.
var ErrReloadRefused = errors.New("reload refused")

// Reload reads the configuration file again and applies it in place. A file
// that does not validate, or that changes what cannot change while running,
// is refused: the running configuration stays as it was and the returned
// error lists every reason.
func (n *Node) Reload() error {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()

	old := n.config()
	next, err := config.Load(old.Path)
	if err == nil {
		err = errors.Join(restartOnly(old, next), supported(next))
	}
	if err == nil {
		err = n.apply(old, next)
	}
	if err != nil {
		n.mu.Lock()
		n.reloadErrors++
		n.mu.Unlock()
		n.log.Error("reload refused, keeping the running configuration", "config", old.Path, "err", err)
		return fmt.Errorf("%w: %w", ErrReloadRefused, err)
	}
	n.mu.Lock()
	n.cfg = next
	n.loadedAt = time.Now()
	n.reloads++
	n.mu.Unlock()
	n.log.Info("configuration reloaded", "config", next.Path)
	return nil
}

// restartOnly refuses changes to the keys that only a restart can apply.
func restartOnly(old, next *config.Config) error {
	var errs []error
	if old.Node.Name != next.Node.Name {
		errs = append(errs, fmt.Errorf("node.name changed from %q to %q: restart lbd to apply", old.Node.Name, next.Node.Name))
	}
	if old.Node.AdminSocket != next.Node.AdminSocket {
		errs = append(errs, fmt.Errorf("node.admin_socket changed from %q to %q: restart lbd to apply", old.Node.AdminSocket, next.Node.AdminSocket))
	}
	if !reflect.DeepEqual(old.Cluster, next.Cluster) {
		errs = append(errs, fmt.Errorf("[cluster] changed: restart lbd to apply"))
	}
	if old.Admin.Listen != next.Admin.Listen {
		errs = append(errs, fmt.Errorf("admin.listen changed from %q to %q: restart lbd to apply", old.Admin.Listen, next.Admin.Listen))
	}
	return errors.Join(errs...)
}

// apply moves the running parts from old to next; parts whose section did
// not change keep running untouched. On error nothing was changed.
func (n *Node) apply(old, next *config.Config) error {
	if err := n.dp.apply(next); err != nil {
		return err
	}
	// VRRP instances that fail to start are logged and reported; the
	// others run the new configuration.
	if err := n.vr.apply(next); err != nil {
		n.log.Error("VRRP instances failed to start after reload", "err", err)
	}
	return nil
}
