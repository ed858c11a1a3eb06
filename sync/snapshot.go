package lbsync

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Snapshot file: state_dir/sync.snap, written to a temporary file, synced
// and renamed over the old one.
//
//	"LBDSNAP1"                         magic
//	uint64 big endian                  time written, unix ns
//	{ uvarint n > 0, n bytes }*        records messages (as on the wire; ttl
//	                                   counts from the time written)
//	uvarint 0                          end
//	uint32 big endian                  CRC-32C of all the bytes before it
const (
	snapMagic = "LBDSNAP1"
	snapName  = "sync.snap"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// snapshot writes every table to the state directory.
func (c *Cluster) snapshot() error {
	c.snapMu.Lock()
	defer c.snapMu.Unlock()
	start := time.Now()
	n, err := c.writeSnapshot(c.cfg.StateDir)
	if err != nil {
		c.stats.snapshots.Add(1)
		c.log.Error("writing snapshot", "err", err)
		return err
	}
	c.log.Debug("snapshot written", "records", n, "took", time.Since(start))
	return nil
}

func (c *Cluster) writeSnapshot(dir string) (records int, err error) {
	tmp, err := os.CreateTemp(dir, snapName+".tmp*")
	if err != nil {
		return 0, fmt.Errorf("sync: snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	crc := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(tmp, crc), 256<<10)
	now := c.now()
	w.WriteString(snapMagic)
	w.Write(binary.BigEndian.AppendUint64(nil, uint64(now)))
	enc := newRecordEncoder(c.names)
	var items []item
	var buf []byte
	emit := func() error {
		records += enc.len()
		buf = enc.finish(buf[:0])
		w.Write(binary.AppendUvarint(nil, uint64(len(buf))))
		_, err := w.Write(buf)
		return err
	}
	for _, t := range c.Tables() {
		for i := range t.shards {
			items = t.collect(i, now, items[:0])
			if err := encodeStripe(enc, t, items, now, emit); err != nil {
				return 0, fmt.Errorf("sync: snapshot: %w", err)
			}
			clear(items)
		}
	}
	if enc.len() > 0 {
		emit()
	}
	w.WriteByte(0)
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("sync: snapshot: %w", err)
	}
	if _, err := tmp.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return 0, fmt.Errorf("sync: snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("sync: snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("sync: snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, snapName)); err != nil {
		return 0, fmt.Errorf("sync: snapshot: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the rename durable
		d.Close()
	}
	return records, nil
}

// restore loads the snapshot, if any. The whole file is checked before
// anything is applied: a corrupt snapshot is reported, renamed to
// sync.snap.corrupt and ignored, and the node starts empty.
func (c *Cluster) restore() {
	path := filepath.Join(c.cfg.StateDir, snapName)
	start := time.Now()
	n, err := c.loadSnapshot(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.log.Info("no snapshot to load", "file", path)
	case err != nil:
		c.stats.snapshots.Add(1)
		c.log.Error("snapshot ignored", "file", path, "err", err)
		if errors.Is(err, ErrCorruptSnapshot) {
			os.Rename(path, path+".corrupt")
		}
	default:
		c.log.Info("snapshot loaded", "file", path, "records", n, "took", time.Since(start).Round(time.Millisecond))
	}
}

// ErrCorruptSnapshot is wrapped by the errors of a snapshot that is not
// whole: bad magic, checksum, framing or message.
var ErrCorruptSnapshot = errors.New("sync: corrupt snapshot")

func (c *Cluster) loadSnapshot(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := readSnapshot(f, nil); err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	now, n := c.now(), 0
	err = readSnapshot(f, func(m *message, written int64) error {
		// Drop what expired while the node was down.
		live := m.records[:0]
		for _, r := range m.records {
			if r.ttl == 0 || written+int64(min(r.ttl, maxTTL))*1e6 > now {
				live = append(live, r)
			}
		}
		m.records = live
		n += len(live)
		return c.applyMessage(m, written)
	})
	return n, err
}

// readSnapshot checks the snapshot in r and, with apply set, passes it each
// message with the time the file was written.
func readSnapshot(r io.Reader, apply func(m *message, written int64) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
	hr := &hashReader{r: br, h: crc32.New(castagnoli)}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrCorruptSnapshot}, args...)...)
	}
	var head [len(snapMagic) + 8]byte
	if _, err := io.ReadFull(hr, head[:]); err != nil {
		return corrupt("header: %v", err)
	}
	if string(head[:len(snapMagic)]) != snapMagic {
		return corrupt("bad magic %q", head[:len(snapMagic)])
	}
	written := int64(binary.BigEndian.Uint64(head[len(snapMagic):]))
	var buf []byte
	var m message
	for {
		n, err := binary.ReadUvarint(hr)
		if err != nil {
			return corrupt("frame length: %v", err)
		}
		if n == 0 {
			break
		}
		if n > maxFrame {
			return corrupt("frame of %d bytes", n)
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(hr, buf); err != nil {
			return corrupt("frame: %v", err)
		}
		if err := decode(buf, &m); err != nil || m.kind != msgRecords {
			return corrupt("message: %v", errors.Join(err, ErrMalformed))
		}
		if apply != nil {
			if err := apply(&m, written); err != nil {
				return err
			}
		}
	}
	sum := hr.h.Sum32()
	var tail [4]byte
	if _, err := io.ReadFull(br, tail[:]); err != nil {
		return corrupt("checksum: %v", err)
	}
	if got := binary.BigEndian.Uint32(tail[:]); got != sum {
		return corrupt("checksum %08x, computed %08x", got, sum)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return corrupt("bytes after the checksum")
	}
	return nil
}

// hashReader hashes what is read through it.
type hashReader struct {
	r *bufio.Reader
	h hash.Hash32
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	return n, err
}

func (h *hashReader) ReadByte() (byte, error) {
	b, err := h.r.ReadByte()
	if err == nil {
		h.h.Write([]byte{b})
	}
	return b, err
}
