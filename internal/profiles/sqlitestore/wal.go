package sqlitestore

import (
	"errors"
	"io/fs"
	"os"
)

// walFile fsyncs the database's write-ahead log. The writer commits with
// synchronous=NORMAL, which writes a commit to the WAL without an fsync;
// the syncer then fsyncs the WAL itself, off the writer goroutine, so that
// the writer executes the next group while the disk makes the last one
// durable. An fsync of the WAL makes every commit written to it before
// durable: SQLite recovers a WAL up to its last whole commit, and syncs
// the WAL and the database file itself around every checkpoint.
//
// Only the syncer goroutine uses a walFile.
type walFile struct {
	path string
	f    *os.File
}

// sync fsyncs the WAL. The file is opened on first use and again if it is
// no longer the one at path (SQLite deletes the WAL when the last
// connection closes; none closes while the Store is open, but an fsync of
// a deleted file would make nothing durable). No WAL means no commit to
// make durable.
func (w *walFile) sync() error {
	fi, err := os.Stat(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if w.f != nil {
		if open, err := w.f.Stat(); err != nil || !os.SameFile(fi, open) {
			_ = w.f.Close()
			w.f = nil
		}
	}
	if w.f == nil {
		if w.f, err = os.Open(w.path); err != nil {
			return err
		}
	}
	return w.f.Sync()
}

// close closes the file, if open. SQLite locks the database and its -shm
// file, never the WAL, so closing this descriptor drops none of its locks.
func (w *walFile) close() error {
	if w.f == nil {
		return nil
	}
	return w.f.Close()
}
