package store

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/shoptrail/shoptrail/engine/model"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func events(ids ...string) []*model.Event {
	var out []*model.Event
	for _, id := range ids {
		out = append(out, &model.Event{ID: id, Type: "x", Via: model.ViaAPI, Time: time.Unix(1, 0).UTC()})
	}
	return out
}

func TestAppendAssignsSeqsAndDeduplicatesAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	dup, err := s.Append(events("a", "b", "a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if dup[0] || dup[1] || !dup[2] {
		t.Fatalf("dup %v", dup)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	evs := events("b", "c")
	dup, err = s.Append(evs, nil)
	if err != nil || !dup[0] || dup[1] || evs[1].Seq != 3 {
		t.Fatalf("after reopen: dup %v seq %d err %v", dup, evs[1].Seq, err)
	}
	got, err := s.EventsAfter(0, 10)
	if err != nil || len(got) != 3 || got[0].ID != "a" || got[2].ID != "c" || got[2].Seq != 3 {
		t.Fatalf("log %+v %v", got, err)
	}
	var seen []string
	s.ScanLog(3, 2, func(ev *model.Event) (bool, error) { seen = append(seen, ev.ID); return true, nil })
	if len(seen) != 2 || seen[0] != "c" || seen[1] != "b" {
		t.Errorf("ScanLog newest first: %v", seen)
	}
	if ev, err := s.Event(model.ViaAPI, "b"); err != nil || ev.Seq != 2 {
		t.Errorf("Event(b) = %+v, %v", ev, err)
	}
	if _, err := s.Event(model.ViaAPI, "zzz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Event(unknown) err %v", err)
	}
}

func TestAppendSplitsBatchesTooBigForOneTransaction(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	big := make([]*model.Event, 30000)
	for i := range big {
		big[i] = &model.Event{ID: string(binary.BigEndian.AppendUint32([]byte("id-"), uint32(i))), Type: "x", URL: "https://shop.example/" + string(make([]byte, 200))}
	}
	if _, err := s.Append(big, nil); err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastSeq(); last != 30000 {
		t.Fatalf("last seq %d", last)
	}
}

func TestSecondProcessGetsAClearError(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	_, err := Open(Options{Dir: dir})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
}

func TestRefusesDataFromANewerBinary(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.update(func(txn *badger.Txn) error {
		return txn.Set(keySchema, binary.BigEndian.AppendUint32(nil, uint32(SchemaVersion()+1)))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, ErrTooNew) {
		t.Fatalf("open: %v", err)
	}
}

func TestAPIKeys(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	k := model.APIKey{ID: "id1", Name: "n", Prefix: "st_abcdef", Hash: []byte("hash"), CreatedAt: time.Now()}
	if err := s.PutAPIKey(k); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeAPIKey("st_abcdef"); err != nil {
		t.Fatal(err)
	}
	got, err := s.APIKeyByHash([]byte("hash"))
	if err != nil || !got.Revoked {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := s.RevokeAPIKey("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke unknown: %v", err)
	}
}
