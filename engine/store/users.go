package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/user"
)

// UserAttrs returns the attributes of the user with email, or ErrNotFound.
func (s *Store) UserAttrs(email string) (user.Attrs, error) {
	var a user.Attrs
	err := s.Read(func(tx *Tx) error { return tx.getJSON(key(pUser, email), &a) })
	return a, err
}

// PutUserAttrs stores the attributes of users.
func (s *Store) PutUserAttrs(as ...user.Attrs) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, a := range as {
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		if err := wb.Set(key(pUser, a.Email), b); err != nil {
			return fmt.Errorf("store: put users: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("store: put users: %w", err)
	}
	return nil
}

// UsersAttrs returns the stored attributes of the given emails, those that
// exist.
func (s *Store) UsersAttrs(emails []string) (map[string]user.Attrs, error) {
	out := make(map[string]user.Attrs, len(emails))
	err := s.Read(func(tx *Tx) error {
		for _, e := range emails {
			var a user.Attrs
			switch err := tx.getJSON(key(pUser, e), &a); {
			case err == nil:
				out[e] = a
			case !errors.Is(err, ErrNotFound):
				return err
			}
		}
		return nil
	})
	return out, err
}

// Erase deletes everything kept about a profile: its events from the log,
// their dedup keys and index entries, its sessions, touchpoints, identity
// links, the profile and (for a user) the attributes. The projector must
// not run meanwhile (it calls Erase itself). It returns how many events it
// deleted.
func (s *Store) Erase(profileID, email string) (int, error) {
	var del [][]byte
	events := 0
	err := s.db.View(func(txn *badger.Txn) error {
		tx := &Tx{txn}
		var p model.Profile
		if err := tx.getJSON(key(pProfile, profileID), &p); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		for _, anon := range p.AnonymousIDs {
			if cur, err := tx.AnonymousProfile(anon); err == nil && cur == profileID {
				del = append(del, key(pAnon, anon))
			}
		}
		// the events, through the profile's index
		pfx := sub(pProfileEv, profileID)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx})
		for it.Rewind(); it.Valid(); it.Next() {
			seq := lastUint64(it.Item().Key())
			del = append(del, it.Item().KeyCopy(nil), eventKey(seq))
			item, err := txn.Get(eventKey(seq))
			if err != nil {
				continue
			}
			ev, err := decodeEvent(item)
			if err != nil {
				it.Close()
				return err
			}
			del = append(del, typeEventKey(ev.Type, seq), key(pEventID, ev.ID))
			events++
		}
		it.Close()
		// sessions, and the browser session ids that point to them
		sessions, err := tx.Sessions(profileID)
		if err != nil {
			return err
		}
		for _, sess := range sessions {
			del = append(del, key(pSession, sess.ID), profileSessionKey(profileID, sess.ID))
			if sess.ClientSessionID != "" {
				if cur, err := tx.ClientSession(sess.ClientSessionID); err == nil && cur == sess.ID {
					del = append(del, key(pClientSess, sess.ClientSessionID))
				}
			}
		}
		it = txn.NewIterator(badger.IteratorOptions{Prefix: sub(pTouch, profileID)})
		for it.Rewind(); it.Valid(); it.Next() {
			del = append(del, it.Item().KeyCopy(nil))
		}
		it.Close()
		del = append(del, key(pOpenSess, profileID), key(pProfile, profileID))
		if email != "" {
			del = append(del, key(pUser, email))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: erase %s: %w", profileID, err)
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range del {
		if err := wb.Delete(k); err != nil {
			return 0, fmt.Errorf("store: erase %s: %w", profileID, err)
		}
	}
	if err := wb.Flush(); err != nil {
		return 0, fmt.Errorf("store: erase %s: %w", profileID, err)
	}
	return events, nil
}

// UserSummary is a row of the admin UI's user search.
type UserSummary struct {
	Email               string
	Subscribed          bool
	FirstSeen, LastSeen time.Time
	Sessions, Orders    int64
}

// SearchUsers lists users whose email starts with prefix: those the
// tracker identified and those created through the API, in email order.
func (s *Store) SearchUsers(prefix string, limit int) ([]UserSummary, error) {
	found := map[string]*UserSummary{}
	err := s.db.View(func(txn *badger.Txn) error {
		for _, scan := range []struct {
			pfx  []byte
			read func(email string, b []byte) error
		}{
			{key(pProfile, "u:"+prefix), func(email string, b []byte) error {
				var p model.Profile
				if err := json.Unmarshal(b, &p); err != nil {
					return err
				}
				u := found[email]
				if u == nil {
					u = &UserSummary{Email: email}
					found[email] = u
				}
				u.FirstSeen, u.LastSeen, u.Sessions, u.Orders = p.FirstSeen, p.LastSeen, p.Sessions, p.Orders
				return nil
			}},
			{key(pUser, prefix), func(email string, b []byte) error {
				var a user.Attrs
				if err := json.Unmarshal(b, &a); err != nil {
					return err
				}
				u := found[email]
				if u == nil {
					u = &UserSummary{Email: email, FirstSeen: a.CreatedAt, LastSeen: a.UpdatedAt}
					found[email] = u
				}
				u.Subscribed = a.IsSubscribed != nil && *a.IsSubscribed
				return nil
			}},
		} {
			base := len(scan.pfx) - len(prefix)
			it := txn.NewIterator(badger.IteratorOptions{Prefix: scan.pfx, PrefetchValues: true})
			n := 0
			for it.Rewind(); it.Valid() && n < limit*2; it.Next() {
				email := string(it.Item().Key()[base:])
				email = strings.TrimPrefix(email, "u:")
				if err := it.Item().Value(func(b []byte) error { return scan.read(email, b) }); err != nil {
					it.Close()
					return err
				}
				n++
			}
			it.Close()
		}
		return nil
	})
	out := make([]UserSummary, 0, len(found))
	for _, u := range found {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Email < out[j].Email })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, err
}
