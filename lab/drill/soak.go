package drill

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"lbd/admin"
)

// SoakConfig sizes a soak.
type SoakConfig struct {
	Advert   time.Duration // advert_interval of both nodes
	Duration time.Duration // how long to load the master
	Streams  int           // concurrent proxied streams driving the load
	Burners  int           // extra busy-looping processes on the machine
}

// Soak checks that a busy proxy does not cause false failovers: two lbd
// nodes at cfg.Advert, the master's proxy saturated by cfg.Streams bulk
// streams through the VIP for cfg.Duration; the backup must never take
// over. It reports the transitions seen, the adverts exchanged and the CPU
// the master's lbd used.
func Soak(ctx context.Context, opts Options, cfg SoakConfig) error {
	out := opts.Out
	c, err := newCluster(opts)
	if err != nil {
		return err
	}
	defer c.close()
	// A sink backend on each node: it reads and discards, as fast as the
	// proxy can push.
	for i, n := range c.nodes {
		ln, err := n.host.Listen("tcp", "127.0.0.1:8080")
		if err != nil {
			return err
		}
		c.wg.Go(func() { sink(ln) })
		c.closers = append(c.closers, ln)
		if err := c.writeLBD(i, []int{150, 100}[i], cfg.Advert, true, []string{"127.0.0.1:8080"}); err != nil {
			return err
		}
		if err := c.start(i); err != nil {
			return err
		}
	}
	if err := c.waitState(0, "MASTER", 30*time.Second); err != nil {
		return err
	}
	if err := c.waitState(1, "BACKUP", 30*time.Second); err != nil {
		return err
	}
	before := [2]admin.Instance{c.instance(0), c.instance(1)}
	cpu0 := procCPU(c.nodes[0].proc.Pid())
	fmt.Fprintf(out, "soak: advert %v, %d streams through lb1's proxy and %d busy processes for %v\n", cfg.Advert, cfg.Streams, cfg.Burners, cfg.Duration)

	var moved atomic.Int64
	lctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	for i := 0; i < cfg.Burners; i++ {
		b := exec.CommandContext(lctx, opts.Probe[0], "burn")
		if err := b.Start(); err != nil {
			return err
		}
		c.wg.Go(func() { b.Wait() })
	}
	var wg sync.WaitGroup
	buf := make([]byte, 256<<10)
	for i := 0; i < cfg.Streams; i++ {
		wg.Go(func() {
			for lctx.Err() == nil {
				conn, err := c.client.Dial("tcp", "198.18.0.100:80")
				if err != nil {
					continue
				}
				stop := context.AfterFunc(lctx, func() { conn.Close() })
				for lctx.Err() == nil {
					n, err := conn.Write(buf)
					moved.Add(int64(n))
					if err != nil {
						break
					}
				}
				stop()
				conn.Close()
			}
		})
	}
	start := time.Now()
	<-lctx.Done()
	wg.Wait()
	took := time.Since(start)
	cpu := procCPU(c.nodes[0].proc.Pid()) - cpu0
	after := [2]admin.Instance{c.instance(0), c.instance(1)}

	falseFailovers := after[1].Counters["became_master"] - before[1].Counters["became_master"]
	fmt.Fprintf(out, "  moved %.1f GiB through the proxy (%.2f Gbit/s); lb1's lbd used %.0f%% of one core\n",
		float64(moved.Load())/(1<<30), float64(moved.Load())*8/took.Seconds()/1e9, 100*cpu.Seconds()/took.Seconds())
	fmt.Fprintf(out, "  lb1 adverts sent %d; lb2 adverts received %d (expected about %d)\n",
		after[0].Counters["adverts_sent"]-before[0].Counters["adverts_sent"],
		after[1].Counters["adverts_received"]-before[1].Counters["adverts_received"], int(took/cfg.Advert))
	fmt.Fprintf(out, "  advert loop: lb1 woke at most %v late; lb2 saw at most %v between two adverts (interval %v)\n",
		after[0].MaxTimerLate.Round(time.Microsecond), after[1].MaxAdvertGap.Round(time.Microsecond), cfg.Advert)
	fmt.Fprintf(out, "  false failovers: %d (lb2 became master %d times; lb1 now %s, lb2 %s)\n",
		falseFailovers, falseFailovers, after[0].State, after[1].State)
	if falseFailovers != 0 || after[0].State != "MASTER" {
		return fmt.Errorf("drill: %d false failovers under load at advert %v", falseFailovers, cfg.Advert)
	}
	return nil
}

// instance returns node i's first VRRP instance status.
func (c *cluster) instance(i int) admin.Instance {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := admin.Call(ctx, filepath.Join(c.nodes[i].dir, "lbd.sock"), admin.CmdStatus)
	var st admin.Status
	if err != nil || !resp.OK || resp.Decode(&st) != nil || len(st.Instances) == 0 {
		return admin.Instance{State: "DOWN"}
	}
	return st.Instances[0]
}

func sink(ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			io.Copy(io.Discard, conn)
			conn.Close()
		})
	}
}

// procCPU returns the user+system CPU time of a process from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	s = s[strings.LastIndexByte(s, ')')+2:]
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	k, _ := strconv.Atoi(f[12])
	return time.Duration(u+k) * 10 * time.Millisecond
}
