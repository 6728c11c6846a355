package dhcpserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// leaseFileVersion is written in every lease file.
const leaseFileVersion = 1

type leaseFile struct {
	Version int     `json:"version"`
	Leases  []Lease `json:"leases"`
}

// load reads the lease file; a missing file is an empty table.
func (s *Server) load() error {
	b, err := os.ReadFile(s.leaseFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dhcpserver: load leases %s: %w", s.leaseFile, err)
	}
	var f leaseFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("dhcpserver: load leases %s: %w", s.leaseFile, err)
	}
	if f.Version != leaseFileVersion {
		return fmt.Errorf("dhcpserver: load leases %s: version %d, want %d", s.leaseFile, f.Version, leaseFileVersion)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range f.Leases {
		l := f.Leases[i]
		if !s.inPool(l.Addr) || (l.ClientID == "" && !l.Declined) {
			s.logf("load leases %s: skip %s (%s): outside the pool", s.leaseFile, l.Addr, l.ClientID)
			continue
		}
		if _, ok := s.byAddr[l.Addr]; ok {
			continue
		}
		s.byAddr[l.Addr] = &l
		if l.ClientID != "" {
			s.byID[l.ClientID] = &l
		}
	}
	return nil
}

// saveLocked writes the acknowledged leases atomically: a temporary file in
// the same directory, renamed over the lease file (mu held).
func (s *Server) saveLocked() error {
	if s.leaseFile == "" {
		return nil
	}
	f := leaseFile{Version: leaseFileVersion, Leases: []Lease{}}
	for _, l := range s.byAddr {
		if !l.Offered {
			f.Leases = append(f.Leases, *l)
		}
	}
	sort.Slice(f.Leases, func(i, j int) bool { return f.Leases[i].Addr.Less(f.Leases[j].Addr) })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("dhcpserver: save leases %s: %w", s.leaseFile, err)
	}
	if err := writeFileAtomic(s.leaseFile, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("dhcpserver: save leases: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data: it writes a temporary file in the
// same directory (created if missing) and renames it over path, so a reader
// sees the old or the new content, never a part.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename this fails harmlessly
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
