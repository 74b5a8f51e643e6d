# A memory store's chunks on disk, for tests that damage one (sourced; POSIX
# sh; needs python3, as the tests that use it do).
#
#   chunk_where STORE KEY   prints "FILE OFFSET LENGTH": where the stored
#                           value of chunk KEY (64 hex digits) lies, in its
#                           own file (older stores) or in a record of a pack
#                           file (docs/store.md "Pack files"); status 1 and
#                           nothing when no file holds it
#   any_chunk STORE         the key of some stored chunk
#   flip FILE OFFSET        byte OFFSET of FILE xor 255, in place
chunk_where() {
	python3 - "$1" "$2" <<'PY'
import glob, os, struct, sys
store, hexkey = sys.argv[1], sys.argv[2]
loose = os.path.join(store, "chunks", hexkey[:2], hexkey)
if os.path.isfile(loose):
    print(loose, 0, os.path.getsize(loose))
    sys.exit(0)
key = bytes.fromhex(hexkey)
for pack in sorted(glob.glob(os.path.join(store, "chunks/packs/*.pack")),
                   reverse=True):
    data = open(pack, "rb").read()
    at = data.rfind(key)
    while at >= 12:
        if data[at - 12:at - 8] == b"SNPK":
            n = struct.unpack("<I", data[at - 8:at - 4])[0]
            print(pack, at + 32, n)
            sys.exit(0)
        at = data.rfind(key, 0, at)
sys.exit(1)
PY
}

any_chunk() {
	python3 - "$1" <<'PY'
import glob, os, sys
store = sys.argv[1]
for f in sorted(glob.glob(os.path.join(store, "chunks/??/*"))):
    print(os.path.basename(f))
    sys.exit(0)
for pack in sorted(glob.glob(os.path.join(store, "chunks/packs/*.pack"))):
    data = open(pack, "rb").read()
    at = data.find(b"SNPK", 16)
    if at >= 0:
        print(data[at + 12:at + 44].hex())
        sys.exit(0)
sys.exit(1)
PY
}

flip() {
	"${PY:-python3}" -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1)
    f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xff]))
' "$1" "$2"
}
