package store

import (
	"encoding/json"
	"errors"
	"fmt"

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
