package lbsync

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
)

// mlWriter receives memberlist's log lines ("[ERR] memberlist: ...") and
// passes them to slog at the matching level. memberlist reports the gossip
// it drops for a wrong or missing key only in its log, so the writer counts
// those lines: memberlist v0.7.0's wording, pinned by TestWrongKeyRejected.
type mlWriter struct {
	log      *slog.Logger
	rejected *atomic.Uint64
}

// rejections are the memberlist messages about traffic that failed
// decryption, or was plaintext where a key is required.
var rejections = []string{
	"Decrypt packet failed",
	"no installed keys could decrypt",
	"encryption is configured but remote state is not encrypted",
	"remote state is encrypted and encryption is not configured",
}

func (w *mlWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	if rest, ok := strings.CutPrefix(line, "["); ok {
		if tag, msg, ok := strings.Cut(rest, "] "); ok {
			switch tag {
			case "DEBUG":
				level = slog.LevelDebug
			case "WARN":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			}
			line = msg
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	for _, r := range rejections {
		if strings.Contains(line, r) {
			w.rejected.Add(1)
			line = "rejected gossip (cluster key differs): " + line
			break
		}
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
