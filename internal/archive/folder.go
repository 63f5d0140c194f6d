package archive

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Folder is a Store in a local folder: the key is the path below it (make run's archive).
type Folder struct{ Root string }

var _ Store = Folder{}

func (f Folder) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "..") || strings.Contains(key, "\\") {
		return "", fmt.Errorf("archive: invalid key %q", key)
	}
	return filepath.Join(f.Root, filepath.FromSlash(key)), nil
}

// Put writes the object atomically (a temporary file renamed into place).
func (f Folder) Put(_ context.Context, key string, body []byte) error {
	p, err := f.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	// A temporary file of its own (two writers of one key never share it), renamed into place.
	tmp, err := os.CreateTemp(filepath.Dir(p), filepath.Base(p)+".*.tmp")
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	_, werr := tmp.Write(body)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("archive: write %s: %w", key, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("archive: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// Get reads the object.
func (f Folder) Get(_ context.Context, key string) ([]byte, error) {
	p, err := f.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return b, nil
}

// List calls fn with each key under prefix in lexical order of the keys (the order S3 lists
// them: "a.b" before "a/b"), descending only into folders that can hold such keys.
func (f Folder) List(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := f.list(ctx, "", prefix, fn); err != nil {
		return fmt.Errorf("archive: list %s: %w", prefix, err)
	}
	return nil
}

// list visits the folder dir (a key prefix ending in "/", or "" for the root). Entries are
// sorted as keys sort: a folder by its name followed by "/".
func (f Folder) list(ctx context.Context, dir, prefix string, fn func(key string) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(f.Root, filepath.FromSlash(dir)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name()+"/")
		} else if !strings.HasSuffix(e.Name(), ".tmp") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for _, n := range names {
		key := dir + n
		if strings.HasSuffix(n, "/") {
			if strings.HasPrefix(key, prefix) || strings.HasPrefix(prefix, key) {
				if err := f.list(ctx, key, prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if strings.HasPrefix(key, prefix) {
			if err := fn(key); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes the object.
func (f Folder) Delete(_ context.Context, key string) error {
	p, err := f.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}
