package store

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// River's routine INFO lines reach an INFO log no more; its warnings and
// errors still do, at their levels.
func TestRiverLogsDemoted(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(demoted{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})})
	log.Info("producer: Producer job counts")
	log.Warn("job rescued")
	log.Error("job failed")
	out := buf.String()
	if strings.Contains(out, "Producer job counts") {
		t.Errorf("River's INFO line reached an INFO log:\n%s", out)
	}
	if !strings.Contains(out, "level=WARN msg=\"job rescued\"") || !strings.Contains(out, "level=ERROR msg=\"job failed\"") {
		t.Errorf("River's warnings and errors lost or moved:\n%s", out)
	}
	buf.Reset()
	debug := slog.New(demoted{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
	debug.Info("producer: Producer job counts")
	if !strings.Contains(buf.String(), "level=DEBUG") {
		t.Errorf("River's INFO line is not DEBUG: %s", buf.String())
	}
}
