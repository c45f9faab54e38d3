package bolt

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/stampede-mq/stampede/store"
	"github.com/stampede-mq/stampede/store/storetest"
)

// The disk fills up under a running store: every caller whose write was
// in the failing commits gets an error, every caller told success finds
// its record, and writing works again once there is room. The full disk
// is /dev/full put in place of the store's file descriptor.
func TestBoltDiskFull(t *testing.T) {
	dir := t.TempDir()
	var file *os.File
	b, err := Open(dir, Options{openFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	before := fill(t, b, "/queue/a", 100, 10, 100)
	// Free pages inside the file, so that the failing commits write pages
	// rather than first having to grow the file.
	var seqs []uint64
	for _, r := range fill(t, b, "/queue/tmp", 2000, 1000, 100) {
		seqs = append(seqs, r.Seq)
	}
	if err := b.Delete("/queue/tmp", seqs...); err != nil {
		t.Fatal(err)
	}

	fd := int(file.Fd())
	saved, err := syscall.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(saved)
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full:", err)
	}
	defer full.Close()
	if err := syscall.Dup3(int(full.Fd()), fd, syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}

	const writers = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed, enospc int
	for w := range writers {
		wg.Go(func() {
			err := b.Append([]*store.Record{storetest.NewRecord("/queue/a", fmt.Sprint("full", w), "x")})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if errors.Is(err, syscall.ENOSPC) {
					enospc++
				}
			}
		})
	}
	wg.Wait()
	if failed != writers {
		t.Fatalf("%d of %d appends on a full disk reported success", writers-failed, writers)
	}
	if enospc == 0 {
		t.Fatal("no append failed with ENOSPC")
	}
	if err := b.Delete("/queue/a", before[0].Seq); err == nil {
		t.Fatal("delete on a full disk reported success")
	}

	// Room again.
	if err := syscall.Dup3(saved, fd, syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	after := fill(t, b, "/queue/a", 10, 10, 100)
	b = reopen(t, b)
	got := storetest.ScanAll(t, b, "/queue/a", 0, 0)
	if len(got) != len(before)+len(after) {
		t.Fatalf("store holds %d records, want the %d that were acknowledged", len(got), len(before)+len(after))
	}
	for i, r := range append(before, after...) {
		if got[i].ID != r.ID || got[i].Seq != r.Seq {
			t.Fatalf("record %d is %s/%d, want %s/%d", i, got[i].ID, got[i].Seq, r.ID, r.Seq)
		}
	}
}
