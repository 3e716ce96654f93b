"""The data extents of a sparse file, as SEEK_DATA / SEEK_HOLE report them: shared by the
Python helpers of tests/make-fixtures.sh and tests/check-fixtures.sh (found via PYTHONPATH)."""
import errno
import os


def extents(f, size):
    """(start, end) of each data extent of the open file `f` of `size` bytes, in order."""
    fd = f.fileno(); pos = 0
    while pos < size:
        try:
            s = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                return
            raise
        e = os.lseek(fd, s, os.SEEK_HOLE)
        yield s, e
        pos = e
