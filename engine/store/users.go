package store

import (
	"encoding/json"
	"errors"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/shoptrail/shoptrail/engine/model"
)

// User returns the attributes of the user with email, or ErrNotFound.
func (s *Store) User(email string) (model.User, error) {
	var u model.User
	err := s.Read(func(tx *Tx) error { return tx.getJSON(nsUser.key(email), &u) })
	return u, err
}

// Users returns the stored attributes of the given emails, those that
// exist.
func (s *Store) Users(emails []string) (map[string]model.User, error) {
	out := make(map[string]model.User, len(emails))
	err := s.Read(func(tx *Tx) error {
		for _, e := range emails {
			var u model.User
			switch err := tx.getJSON(nsUser.key(e), &u); {
			case err == nil:
				out[e] = u
			case !errors.Is(err, ErrNotFound):
				return err
			}
		}
		return nil
	})
	return out, err
}

// PutUser stores a user's attributes. Callers hold Lock("user", email)
// from the read to the commit, and commit with the event that records the
// change (Append's also).
func (tx *Tx) PutUser(u model.User) error { return tx.setJSON(nsUser.key(u.Email), u) }

// DeleteUser deletes a user's attributes.
func (tx *Tx) DeleteUser(email string) error { return tx.delete(nsUser.key(email)) }

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
			{nsProfile.key(model.UserProfileID(prefix)), func(email string, b []byte) error {
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
			{nsUser.key(prefix), func(email string, b []byte) error {
				var a model.User
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
