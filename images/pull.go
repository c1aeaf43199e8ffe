package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-runtime/berth/pkg/version"
)

// Auth is the credentials a pull request carries (CRI AuthConfig).
type Auth struct {
	Username      string
	Password      string
	Auth          string // base64 user:password
	IdentityToken string
	RegistryToken string
}

func (a *Auth) empty() bool {
	return a == nil || *a == Auth{}
}

func (a *Auth) Authenticator() (authn.Authenticator, error) {
	cfg := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	if a.Auth != "" {
		u, p, err := decodeBasic(a.Auth)
		if err != nil {
			return nil, errorf(ErrInvalid, "auth.auth: %v", err)
		}
		cfg.Username, cfg.Password = u, p
	}
	return authn.FromConfig(cfg), nil
}

// Pull fetches an image and records it under the requested name. Pulls of
// the same name at once share one pull.
func (s *Service) Pull(ctx context.Context, imageName string, auth *Auth) (*Image, error) {
	ref, err := ParseRef(imageName)
	if err != nil {
		return nil, withKind(ErrInvalid, err)
	}
	if !auth.empty() {
		// A caller's credentials are its own: its pull is not shared
		// (its layer downloads still are, by chain ID, after it has read
		// the manifest with its own credentials).
		return s.pull(ctx, ref, auth)
	}
	v, err := s.pullFlight.Do(ctx, ref.String(), func(ctx context.Context) (any, error) { return s.pull(ctx, ref, nil) })
	if err != nil {
		return nil, err
	}
	return v.(*Image).clone(), nil
}

func (s *Service) pull(ctx context.Context, ref Ref, auth *Auth) (_ *Image, err error) {
	defer s.observePull(time.Now(), &err)
	s.pulling.Add(1)
	defer s.pullDone()
	s.cfgMu.RLock()
	hosts := hostsFor(ref.Domain(), s.regs)
	authFile, timeout, jobs := s.auth, s.timeout.D(), s.jobs
	s.cfgMu.RUnlock()

	var tried []string
	var last error
	for _, h := range hosts {
		var a authn.Authenticator = authn.Anonymous
		if !auth.empty() {
			var err error
			if a, err = auth.Authenticator(); err != nil {
				return nil, err
			}
		} else if c, ok := authFile.lookup(ref.Domain(), h.Host); ok {
			a = authn.FromConfig(c)
		}
		img, err := s.pullFrom(ctx, ref, h, a, timeout, jobs)
		if err == nil {
			return img, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
		if h.Mirror {
			s.log.WithError(err).Infof("pull %s from mirror %s failed, trying next", ref, h.Host)
			tried = append(tried, fmt.Sprintf("mirror %s: %v", h.Host, err))
		}
	}
	msg := fmt.Sprintf("pull %s: %v", ref, last)
	if len(tried) > 0 {
		msg += " (after " + strings.Join(tried, "; ") + ")"
	}
	return nil, &kindError{kind: kindOf(last), err: errors.New(msg)}
}

func kindOf(err error) error {
	for _, k := range []error{ErrNotFound, ErrUnauthorized, ErrForbidden, ErrNoProgress, ErrUnavailable, ErrBadContent, ErrInvalid} {
		if errors.Is(err, k) {
			return k
		}
	}
	if errors.Is(err, context.Canceled) {
		return context.Canceled
	}
	return errors.New("pull failed")
}

func (s *Service) pullFrom(ctx context.Context, ref Ref, h host, a authn.Authenticator, timeout time.Duration, jobs int) (*Image, error) {
	var nopts []name.Option
	if h.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	repo, err := name.NewRepository(h.Host+"/"+ref.Path(), nopts...)
	if err != nil {
		return nil, withKind(ErrInvalid, err)
	}
	rt := &guardTransport{host: h.Host, next: &progressTransport{timeout: timeout, next: newBaseTransport(h.Insecure, timeout), bytes: &s.pulledBytes}}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(rt), remote.WithAuth(a), remote.WithUserAgent("berth/" + version.Version)}

	var target name.Reference = repo.Tag(ref.Tag)
	if ref.Digest != "" {
		target = repo.Digest(ref.Digest)
	}
	desc, err := remote.Get(target, opts...)
	if err != nil {
		return nil, classify(err)
	}
	top := digestOf(desc.Manifest)
	if ref.Digest != "" && top != ref.Digest {
		return nil, errorf(ErrBadContent, "registry sent a manifest with digest %s for %s", top, ref.Digest)
	}
	rawManifest := desc.Manifest
	var rawIndex []byte
	if isIndex(string(desc.MediaType)) {
		rawIndex = rawManifest
		idx, err := parseIndex(rawIndex)
		if err != nil {
			return nil, errorf(ErrBadContent, "index %s: %v", top, err)
		}
		chosen, err := choosePlatform(idx, NodePlatform())
		if err != nil {
			return nil, err
		}
		sub, err := remote.Get(repo.Digest(chosen.Digest.String()), opts...)
		if err != nil {
			return nil, classify(err)
		}
		if got := digestOf(sub.Manifest); got != chosen.Digest.String() {
			return nil, errorf(ErrBadContent, "registry sent a manifest with digest %s for %s", got, chosen.Digest)
		}
		rawManifest = sub.Manifest
	} else if !isImageManifest(string(desc.MediaType)) {
		return nil, errorf(ErrBadContent, "%s is a %s, not an image", ref, desc.MediaType)
	}

	src := source{name: h.Host + "/" + ref.Path(), open: func(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
		// The layer download may outlive this pull's caller (it is shared),
		// so it runs under the context it is given.
		l, err := remote.Layer(repo.Digest(d.Digest.String()), append(opts, remote.WithContext(ctx))...)
		if err != nil {
			return nil, err
		}
		return l.Compressed()
	}}
	img, release, err := s.ingest(ctx, src, rawManifest, jobs)
	if err != nil {
		return nil, err
	}
	defer release()
	if rawIndex != nil {
		if err := s.writeBlob(top, rawIndex); err != nil {
			return nil, err
		}
		img.IndexDigest = top
	}
	tag := ""
	if ref.Tag != "" && ref.Digest == "" {
		tag = ref.TagRef()
	}
	return s.commit(img, tag, ref.Repo+"@"+top)
}
