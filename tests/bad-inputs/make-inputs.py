#!/usr/bin/python3
"""make-inputs.py DIR [--big] — writes the hostile files of catalogue.txt.

Small files live in git beside this script (run it with DIR = tests/bad-inputs
to rewrite them); --big writes only the large ones (a model with 10^6 layers,
gzip bombs, a 4 MB CSV line), which bad-inputs.sh makes at test time in the
build directory instead of keeping megabytes in git.  Every file is made
deterministically, so the catalogue is the same on every machine."""
import gzip, io, os, struct, sys, zipfile, zlib
import numpy as np

out, big = sys.argv[1], '--big' in sys.argv
os.makedirs(out, exist_ok=True)

def put(name, data, large=False):
    if large != big:
        return
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data.encode() if isinstance(data, str) else data)

def idx(dtype, dims, data=b'', ndim=None):
    return (bytes([0, 0, dtype, len(dims) if ndim is None else ndim])
            + b''.join(struct.pack('>I', d) for d in dims) + data)

# ---- IDX images and labels (the model takes 2x2x1, labels 0..2) ----------
put('idx-empty.idx', b'')
put('idx-truncated-header.idx', b'\0\0\x08\x03\0\0\0')
put('idx-truncated-dims.idx', idx(8, [3, 2])[:-2])
put('idx-not-idx.idx', b'PK\x03\x04 this is a zip, not IDX')
put('idx-unknown-type.idx', idx(0x07, [3, 2, 2], bytes(12)))
put('idx-zero-dims.idx', idx(8, [], ndim=0))
put('idx-255-dims.idx', idx(8, [1] * 4, ndim=255))
put('idx-oversized-header.idx', idx(8, [0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF]))
put('idx-dims-product-overflows.idx', idx(0x0E, [1 << 16, 1 << 16, 1 << 16, 1 << 16]))
put('idx-dims-just-over-4gib.idx', idx(8, [(1 << 28) + 1, 2, 2]))
put('idx-truncated-data.idx', idx(8, [3, 2, 2], bytes(5)))
put('idx-extra-bytes.idx', idx(8, [3, 2, 2], bytes(13)))
put('idx-wrong-shape.idx', idx(8, [2, 28, 28], bytes(2 * 28 * 28)))
put('idx-one-dim-images.idx', idx(8, [12], bytes(12)))
put('idx-zero-images.idx', idx(8, [0, 2, 2]))
put('idx-float-nan.idx', idx(0x0D, [3, 2, 2], struct.pack('>12f', *([0.5] * 5 + [float('nan')] + [0.5] * 6))))
put('idx-float-inf.idx', idx(0x0D, [3, 2, 2], struct.pack('>12f', *([0.5] * 11 + [float('inf')]))))
put('idx-corrupt.idx.gz', gzip.compress(idx(8, [3, 2, 2], bytes(12)))[:10] + b'\xff' * 32)   # invalid block type
put('idx-truncated.idx.gz', gzip.compress(idx(8, [3, 2, 2], bytes(range(12))))[:-12])
put('labels-out-of-range.idx', idx(8, [3], bytes([0, 7, 1])))
put('labels-negative.idx', idx(0x09, [3], bytes([0, 0xFF, 1])))
put('labels-two-dims.idx', idx(8, [3, 1], bytes(3)))
put('labels-count-mismatch.idx', idx(8, [5], bytes(5)))
put('labels-float-fraction.idx', idx(0x0D, [3], struct.pack('>3f', 0, 1.5, 2)))
# gzip bombs: a few hundred KB that inflate to 200 MB (zlib streams it; the
# header decides how much is read, so the loader stops at the first extra
# byte), and one whose header asks for 2 GiB of floats with 1 MB of data.
if big:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = z.compress(idx(8, [3, 2, 2], bytes(12)))
    for _ in range(200):
        bomb += z.compress(bytes(1 << 20))
    put('idx-gzip-bomb.idx.gz', bomb + z.flush(), True)
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    put('idx-gzip-bomb-header.idx.gz', z.compress(idx(8, [1 << 27, 2, 2])) + z.compress(bytes(1 << 20)) + z.flush(), True)

# ---- CSV (label, then 4 pixels 0..255) -------------------------------------
put('csv-empty.csv', '')
put('csv-header-only.csv', 'label,p0,p1,p2,p3\n')
put('csv-nan.csv', 'label,p0,p1,p2,p3\n1,0,nan,0,0\n')
put('csv-inf.csv', '1,0,0,inf,0\n')
put('csv-text.csv', '1,0,zero,0,0\n')
put('csv-huge-number.csv', '1,0,0,0,1e999\n')
put('csv-negative-pixel.csv', '1,0,-3,0,0\n')
put('csv-label-fraction.csv', '1.5,0,0,0,0\n')
put('csv-label-huge.csv', '1e300,0,0,0,0\n')
put('csv-label-nan.csv', 'nan,0,0,0,0\n')
put('csv-too-few-columns.csv', '1,0,0\n')
put('csv-too-many-columns.csv', '1,0,0,0,0,0,0\n')
put('csv-empty-field.csv', '1,0,,0,0\n')
put('csv-nul-byte.csv', b'1,0,0,0,0\n2,0\x000,0,0\n')
put('csv-binary.csv', bytes(range(256)) * 4)
put('csv-corrupt.csv.gz', gzip.compress(b'1,0,0,0,0\n' * 10)[:15] + b'garbage' * 5)
if big:
    put('csv-4mb-line.csv', '1' + ',0' * (2 << 20) + '\n', True)
    put('csv-million-rows-then-bad.csv', '1,0,0,0,0\n' * 1000000 + '1,0,0,0\n', True)

# ---- .npz weights and checkpoints (fc1.weight [3,4], fc1.bias [3]) ----------
def npz(arrays, compress=False):
    b = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(b, **arrays)
    return b.getvalue()

W = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
B = np.zeros(3, np.float32)
good = {'fc1.weight': W, 'fc1.bias': B}
put('npz-empty.npz', b'')
put('npz-not-zip.npz', 'this is text, not a zip file\n')
put('npz-wrong-names.npz', npz({'conv1.weight': W, 'conv1.bias': B}))
put('npz-missing-bias.npz', npz({'fc1.weight': W}))
put('npz-wrong-shape.npz', npz({'fc1.weight': W.T.copy(), 'fc1.bias': B}))
put('npz-wrong-rank.npz', npz({'fc1.weight': W.reshape(12), 'fc1.bias': B}))
put('npz-int-dtype.npz', npz({'fc1.weight': W.astype(np.int32), 'fc1.bias': B}))
put('npz-complex-dtype.npz', npz({'fc1.weight': W.astype(np.complex64), 'fc1.bias': B}))
put('npz-big-endian.npz', npz({'fc1.weight': W.astype('>f4'), 'fc1.bias': B}))
put('npz-fortran-order.npz', npz({'fc1.weight': np.asfortranarray(W), 'fc1.bias': B}))
put('npz-object-dtype.npz', npz({'fc1.weight': np.array([None, 'x'], dtype=object), 'fc1.bias': B}))
put('npz-string-dtype.npz', npz({'fc1.weight': np.array(['abc'] * 12).reshape(3, 4), 'fc1.bias': B}))
put('npz-zero-size.npz', npz({'fc1.weight': np.zeros((0, 4), np.float32), 'fc1.bias': B}))
good_bytes = npz(good)

def patch_all(data, sig, off, fmt, value):
    """Every record with signature sig gets value packed at off."""
    data = bytearray(data)
    i = data.find(sig)
    while i >= 0:
        struct.pack_into(fmt, data, i + off, value)
        i = data.find(sig, i + 4)
    return bytes(data)

# zip records: local header PK\3\4 (sizes at 18, 22), central PK\1\2 (20, 24,
# local offset 42), end PK\5\6 (entries 8/10, directory size 12, offset 16).
put('zip-absurd-local-sizes.npz', patch_all(patch_all(good_bytes, b'PK\x03\x04', 18, '<I', 0xFFFFFFF0), b'PK\x03\x04', 22, '<I', 0xFFFFFFF0))
put('zip-absurd-central-sizes.npz', patch_all(patch_all(good_bytes, b'PK\x01\x02', 20, '<I', 0xFFFFFFF0), b'PK\x01\x02', 24, '<I', 0xFFFFFFF0))
put('zip-zip64-marker-sizes.npz', patch_all(patch_all(good_bytes, b'PK\x01\x02', 20, '<I', 0xFFFFFFFF), b'PK\x01\x02', 24, '<I', 0xFFFFFFFF))
put('zip-local-offset-past-end.npz', patch_all(good_bytes, b'PK\x01\x02', 42, '<I', 0x7FFFFFFF))
put('zip-65535-entries.npz', patch_all(patch_all(good_bytes, b'PK\x05\x06', 8, '<H', 0xFFFF), b'PK\x05\x06', 10, '<H', 0xFFFF))
put('zip-directory-past-end.npz', patch_all(good_bytes, b'PK\x05\x06', 16, '<I', 0xFFFFFF00))
put('zip-directory-size-huge.npz', patch_all(good_bytes, b'PK\x05\x06', 12, '<I', 0xFFFFFF00))
put('zip-truncated.npz', good_bytes[:len(good_bytes) // 2])
put('zip-bad-crc.npz', patch_all(patch_all(good_bytes, b'PK\x01\x02', 16, '<I', 0x12345678), b'PK\x03\x04', 14, '<I', 0x12345678))
put('zip-unknown-method.npz', patch_all(patch_all(good_bytes, b'PK\x01\x02', 10, '<H', 12), b'PK\x03\x04', 8, '<H', 12))
gc = npz(good, True)
# a deflated entry that claims to inflate to 4 GiB - 16 bytes
put('zip-deflate-claims-4gib.npz', patch_all(patch_all(gc, b'PK\x01\x02', 24, '<I', 0xFFFFFFF0), b'PK\x03\x04', 22, '<I', 0xFFFFFFF0))
# the .npy inside a well-formed zip (CRCs right): hostile headers and data
def npy(header, data=b'', magic=b'\x93NUMPY\x01\x00', hlen=None):
    h = header.encode()
    h += b' ' * ((64 - (len(magic) + 2 + len(h) + 1) % 64) % 64) + b'\n'
    return magic + struct.pack('<H', len(h) if hlen is None else hlen) + h + data

def zipped(weight_npy):
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w') as z:
        z.writestr('fc1.weight.npy', weight_npy)
        z.writestr('fc1.bias.npy', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", bytes(12)))
    return b.getvalue()

F = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }"
put('npy-shape-overflow.npz', zipped(npy(F % '(4611686018427387904, 4611686018427387904)', bytes(48))))
put('npy-shape-product-wraps.npz', zipped(npy(F % '(4294967296, 4294967296, 3, 4)', bytes(48))))
put('npy-negative-shape.npz', zipped(npy(F % '(-3, -4)', bytes(48))))
put('npy-nine-dims.npz', zipped(npy(F % '(1, 1, 1, 1, 1, 1, 1, 3, 4)', bytes(48))))
put('npy-data-short.npz', zipped(npy(F % '(3, 4)', bytes(20))))
put('npy-no-magic.npz', zipped(npy(F % '(3, 4)', bytes(48), magic=b'\x93NUMPZ\x01\x00')))
put('npy-version-9.npz', zipped(npy(F % '(3, 4)', bytes(48), magic=b'\x93NUMPY\x09\x00')))
put('npy-header-len-huge.npz', zipped(npy(F % '(3, 4)', bytes(48), hlen=0xFFFF)))
put('npy-header-no-shape.npz', zipped(npy("{'descr': '<f4', 'fortran_order': False, }", bytes(48))))
put('npy-header-garbage.npz', zipped(npy("{'descr': '<f4', 'shape': ((((((((((, }", bytes(48))))
put('npy-header-unterminated.npz', zipped(b'\x93NUMPY\x01\x00' + struct.pack('<H', 20) + b"{'descr': '<f4', 'sh"))
put('npy-descr-long.npz', zipped(npy("{'descr': '<" + 'f' * 300 + "', 'fortran_order': False, 'shape': (3, 4), }", bytes(48))))
put('npy-empty-entry.npz', zipped(b''))
# checkpoints for --resume: fine weights, hostile training state
state = dict(good, **{'optim.kind': np.array([0], np.int64), 'optim.step': np.array([3], np.int64),
                      'optim.lr': np.array([0.01]), 'optim.momentum': np.array([0.0]), 'optim.beta1': np.array([0.9]),
                      'optim.beta2': np.array([0.999]), 'optim.eps': np.array([1e-8]),
                      'train.epoch': np.array([1], np.int64), 'train.batch_index': np.array([0], np.int64),
                      'train.batch': np.array([4], np.int64), 'train.shuffle': np.array([1], np.int64),
                      'train.rng': np.array([1, 2, 3, 4], np.uint64)})
def bad_state(**kw):
    s = dict(state)
    s.update({k.replace('__', '.'): np.array([v], np.int64 if isinstance(v, int) else np.float64) for k, v in kw.items()})
    return npz(s)
put('state-batch-huge.npz', bad_state(train__batch=1 << 40))
put('state-batch-negative.npz', bad_state(train__batch=-5))
put('state-batch-int-max.npz', bad_state(train__batch=2147483647))
put('state-epoch-huge.npz', bad_state(train__epoch=1 << 62))
put('state-epoch-int-max.npz', bad_state(train__epoch=2147483647))
put('state-batch-index-huge.npz', bad_state(train__batch_index=1 << 62))
put('state-optim-kind-bad.npz', bad_state(optim__kind=7))
put('state-lr-nan.npz', bad_state(optim__lr=float('nan')))
put('state-step-negative.npz', bad_state(optim__step=-1))
put('state-no-rng.npz', npz({k: v for k, v in state.items() if k != 'train.rng'}))
put('state-adam-missing-buffers.npz', bad_state(optim__kind=2))

# ---- .cnn models -------------------------------------------------------------
put('model-channels-out-of-range.cnn', 'input 224x224x3\nconv 3x3x1000000 pad=1\nrelu\nfc 10\n')
put('model-huge-channels.cnn', 'input 224x224x3\nconv 3x3x65536 pad=1\nrelu\nfc 10\n')
put('model-buffers-too-big.cnn', 'input 512x512x3\n' + 'conv 3x3x4096 pad=1\n' * 8 + 'globalavgpool\nfc 10\n')
put('model-huge-input.cnn', 'input 100000x100000x3\nconv 3x3x8\nfc 10\n')
put('model-huge-fc.cnn', 'input 28x28x1\nfc 2147483647\nfc 10\n')
put('model-fc-overflow.cnn', 'input 28x28x1\nfc 99999999999999999999\n')
put('model-huge-kernel.cnn', 'input 28x28x1\nconv 2147483647x2147483647x1\n')
put('model-huge-batch.cnn', 'input 28x28x1\nconv 3x3x64 pad=1\nfc 10\nbatch 1000000\n')
put('model-binary.cnn', bytes(range(256)))
put('model-unpool-without-pool.cnn', 'input 8x8x1\nunpool\nfc 2\n')
put('model-empty.cnn', '')
if big:
    put('model-million-layers.cnn', 'input 4x4x1\n' + 'relu\n' * 1000000 + 'fc 2\n', True)
    put('model-deep-unpool-nesting.cnn', 'input 2x2x1\n' + 'maxpool 1\n' * 100000 + 'unpool\n' * 100000 + 'fc 2\n', True)
    put('model-deep-pools-shrink.cnn', 'input 64x64x1\n' + 'maxpool 2\n' * 70000 + 'unpool\n' * 70000 + 'fc 2\n', True)
    put('model-million-args.cnn', 'input 4x4x1\nconv' + ' 3x3x8' * 1000000 + '\nfc 2\n', True)
    put('model-unpool-excess.cnn', 'input 2x2x1\nmaxpool 1\n' + 'unpool\n' * 100000 + 'fc 2\n', True)
    put('model-16mib.cnn', '#' * (16 << 20) + '\ninput 2x2\nfc 2\n', True)
