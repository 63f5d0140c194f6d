package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3API is the part of the S3 client the S3 store uses (*s3.Client implements it).
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	s3.ListObjectsV2APIClient
}

// S3 is a Store in an S3 bucket (or any S3-compatible server): the archive Firehose writes on
// AWS. Keys are object keys below Prefix (usually empty: the bucket holds only the archive).
// Each call is one request: Put one PutObject, Get one GetObject, Delete one DeleteObject,
// List one ListObjectsV2 per 1,000 keys.
type S3 struct {
	Client S3API
	Bucket string
	Prefix string // e.g. "archive/"; "" for the bucket's root
}

var _ Store = (*S3)(nil)

// NewS3Client builds the S3 client of the archive from a loaded configuration. The endpoint
// comes from the SDK's standard AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL); emulators need
// path-style addressing (http://host:port/bucket/key), which pathStyle turns on, and the
// request checksums only when an operation requires them (an emulator may not read the
// streaming checksum trailers of newer SDKs). The composition root decides pathStyle (true
// when an endpoint override is configured).
func NewS3Client(cfg aws.Config, pathStyle bool) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		if pathStyle {
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
}

// Put writes (or replaces) the object: one PutObject (S3 replaces an object atomically).
func (s *S3) Put(ctx context.Context, key string, body []byte) error {
	_, err := s.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.Bucket),
		Key:           aws.String(s.Prefix + key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/x-ndjson"),
	})
	if err != nil {
		return fmt.Errorf("archive: put %s: %w", key, err)
	}
	return nil
}

// Get reads the object: one GetObject; NoSuchKey is ErrNotFound.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.Prefix + key)})
	if err != nil {
		if notFound(err) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("archive: get %s: %w", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("archive: read %s: %w", key, err)
	}
	return b, nil
}

func notFound(err error) bool {
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return true
	}
	var nf *types.NotFound
	if errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound")
}

// List calls fn with every key under prefix in lexical order (S3 lists keys in UTF-8 binary
// order), one ListObjectsV2 page (up to 1,000 keys) at a time.
func (s *S3) List(ctx context.Context, prefix string, fn func(key string) error) error {
	p := s3.NewListObjectsV2Paginator(s.Client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.Bucket),
		Prefix: aws.String(s.Prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("archive: list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			if err := fn(aws.ToString(o.Key)[len(s.Prefix):]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes the object: one DeleteObject (S3 answers success for a missing key).
func (s *S3) Delete(ctx context.Context, key string) error {
	_, err := s.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.Prefix + key)})
	if err != nil && !notFound(err) {
		return fmt.Errorf("archive: delete %s: %w", key, err)
	}
	return nil
}

// Open returns the store at location, as configured once by a composition root:
// "s3://bucket" or "s3://bucket/prefix" is S3 (a client from cfg; pathStyle for an emulator
// endpoint), anything else a folder path. An empty location is an error.
func Open(cfg aws.Config, location string, pathStyle bool) (Store, error) {
	rest, isS3 := strings.CutPrefix(location, "s3://")
	switch {
	case location == "":
		return nil, errors.New("archive: no location")
	case !isS3:
		return Folder{Root: location}, nil
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return nil, fmt.Errorf("archive: location %q names no bucket", location)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &S3{Client: NewS3Client(cfg, pathStyle), Bucket: bucket, Prefix: prefix}, nil
}
