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

// A profile's entry for a session that is gone (an erasure left it) is
// dropped when the profile is merged, instead of failing the merge: a
// failing merge stops the identity stage, and with it every projection,
// for good (found by segment's random live-fold test after a browser
// linked to two users who were both erased).
func TestMoveProfileDropsAnEntryForASessionThatIsGone(t *testing.T) {
	st := open(t, t.TempDir())
	err := st.Project(func(tx *Tx) error {
		if err := tx.PutSession(model.Session{ID: "s-live", ProfileID: "a:1"}); err != nil {
			return err
		}
		for _, id := range []string{"s-gone", "s-live"} {
			if err := tx.IndexSession("a:1", id); err != nil {
				return err
			}
		}
		moved, err := tx.MoveProfile("a:1", "u:x@example.com")
		if err != nil {
			return err
		}
		if len(moved) != 1 || moved[0] != "s-live" {
			t.Errorf("moved %v, want [s-live]", moved)
		}
		s, err := tx.Session("s-live")
		if err != nil || s.ProfileID != "u:x@example.com" {
			t.Errorf("s-live: %+v, %v", s, err)
		}
		for _, k := range [][]byte{profileSessionKey("a:1", "s-gone"), profileSessionKey("u:x@example.com", "s-gone")} {
			if _, err := tx.txn.Get(k); !errors.Is(err, badger.ErrKeyNotFound) {
				t.Errorf("%q: %v, want it gone", k, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
