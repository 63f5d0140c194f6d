package segment

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/serverless-cdp/cdp/internal/predict"
)

// memChunk is a stored chunk of features with its expiry.
type memChunk struct {
	data    []byte
	expires time.Time
}

// Modelled request units of the in-memory store: a write costs a unit per KB, an eventually
// consistent read half a unit per 4 KB (DynamoDB's pricing).
func writeUnits(size int) float64 { return float64(max(1, (size+1023)/1024)) }
func readUnits(size int) float64  { return 0.5 * float64(max(1, (size+4095)/4096)) }

// PutTraining stores a run (see TrainingStore).
func (m *MemStore) PutTraining(_ context.Context, t *Training) (Units, error) {
	data, err := json.Marshal(t)
	if err != nil {
		return Units{}, fmt.Errorf("encode training: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.defs[skTrainPfx+t.TraitID].ver != t.Version-1 {
		return Units{Write: 1}, ErrConflict
	}
	m.defs[skTrainPfx+t.TraitID] = memBlob{data: data, ver: t.Version}
	return Units{Write: writeUnits(len(data))}, nil
}

// PutModel stores a model (see TrainingStore).
func (m *MemStore) PutModel(_ context.Context, traitID string, model *predict.Model) (Units, error) {
	b, err := encodeModel(traitID, model)
	if err != nil {
		return Units{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.defs[skModelPfx+traitID] = memBlob{data: b}
	return Units{Write: writeUnits(len(b))}, nil
}

// LoadStates reads states (see TrainingStore).
func (m *MemStore) LoadStates(_ context.Context, ids []string) ([]*State, Units, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var u Units
	out := make([]*State, len(ids))
	for i, id := range ids {
		b, ok := m.states[id]
		if !ok {
			continue
		}
		s, err := decodeState(b.data, b.ver)
		if err != nil {
			return nil, u, fmt.Errorf("profile %s: %w", id, err)
		}
		out[i] = s
		u.Read += readUnits(len(b.data))
	}
	return out, u, nil
}

// PutChunk stores a chunk of features (see TrainingStore).
func (m *MemStore) PutChunk(_ context.Context, traitID, runID string, n int, profiles []predict.Profile, expires time.Time) (Units, error) {
	b, err := encodeChunk(profiles)
	if err != nil {
		return Units{}, err
	}
	pk, sk := chunkKey(traitID, runID, n)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.chunks == nil {
		m.chunks = map[string]memChunk{}
	}
	m.chunks[pk+"\x00"+sk] = memChunk{data: b, expires: expires}
	return Units{Write: writeUnits(len(b))}, nil
}

// Chunks reads a run's chunks in order (see TrainingStore).
func (m *MemStore) Chunks(_ context.Context, traitID, runID string, n int, fn func([]predict.Profile) error) (Units, error) {
	var u Units
	for k := 0; k < n; k++ {
		pk, sk := chunkKey(traitID, runID, k)
		m.mu.Lock()
		c, ok := m.chunks[pk+"\x00"+sk]
		m.mu.Unlock()
		if !ok {
			return u, fmt.Errorf("read features: chunk %d of %d not found (expired?)", k, n)
		}
		u.Read += readUnits(len(c.data))
		var ps []predict.Profile
		if err := gunzipJSON(c.data, &ps); err != nil {
			return u, fmt.Errorf("read features chunk %d: %w", k, err)
		}
		if err := fn(ps); err != nil {
			return u, err
		}
	}
	return u, nil
}
