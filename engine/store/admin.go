package store

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// ErrExists means the thing to create exists already.
var ErrExists = errors.New("store: already exists")

// AdminAccount is the one account of the admin UI.
type AdminAccount struct {
	Username  string    `json:"username"`
	Hash      []byte    `json:"hash"` // bcrypt
	CreatedAt time.Time `json:"created_at"`
}

// AdminSession is a signed-in browser. Only a hash of its id is stored.
type AdminSession struct {
	Username string    `json:"username"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
}

// Admin returns the admin account, or ErrNotFound before setup.
func (s *Store) Admin() (AdminAccount, error) {
	var a AdminAccount
	return a, s.Read(func(tx *Tx) error { return tx.getJSON(keyAdmin, &a) })
}

// CreateAdmin stores the admin account, once: ErrExists afterwards.
func (s *Store) CreateAdmin(a AdminAccount) error {
	defer s.Lock("admin")()
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return s.update(func(txn *badger.Txn) error {
		if _, err := txn.Get(keyAdmin); err == nil {
			return ErrExists
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return txn.Set(keyAdmin, b)
	})
}

// PutAdminSession stores a session under the hash of its id until expires.
func (s *Store) PutAdminSession(hash []byte, sess AdminSession, expires time.Time) error {
	b, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	return s.update(func(txn *badger.Txn) error {
		return txn.SetEntry(badger.NewEntry(nsAdminSess.key(string(hash)), b).WithTTL(time.Until(expires)))
	})
}

// AdminSession returns a session that has not expired, or ErrNotFound.
func (s *Store) AdminSession(hash []byte) (AdminSession, error) {
	var a AdminSession
	return a, s.Read(func(tx *Tx) error { return tx.getJSON(nsAdminSess.key(string(hash)), &a) })
}

// DeleteAdminSession ends a session.
func (s *Store) DeleteAdminSession(hash []byte) error {
	return s.update(func(txn *badger.Txn) error { return txn.Delete(nsAdminSess.key(string(hash))) })
}

// Setting decodes the setting name into v, or returns ErrNotFound.
func (s *Store) Setting(name string, v any) error {
	return s.Read(func(tx *Tx) error { return tx.getJSON(nsSetting.key(name), v) })
}

// PutSetting stores a setting.
func (s *Store) PutSetting(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.update(func(txn *badger.Txn) error { return txn.Set(nsSetting.key(name), b) })
}
