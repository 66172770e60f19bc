#!/usr/bin/python3
"""Writes the first TRAIN training and TEST test samples of a cigl dataset file into a new one
(same schema and attributes), so MPI and end-to-end tests can run the real data quickly.

    make_subset.py SRC.h5 DST.h5 TRAIN TEST
"""
import sys

import h5py


def main():
    src, dst, n_train, n_test = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with h5py.File(src, "r") as s, h5py.File(dst + ".tmp", "w") as d:
        if s.attrs.get("augment", "none") != "none":
            sys.exit("make_subset.py: %s stores images larger than the input (augment %s); "
                     "only plain datasets can be cut" % (src, s.attrs["augment"]))
        for k, v in s.attrs.items():
            d.attrs[k] = v
        d.attrs["name"] = s.attrs["name"] + "-subset"
        # Written as format 1, whose content hash cigl computes at load: format 2 stores the
        # hash of the whole source, which the subset must not claim.
        d.attrs["format_version"] = 1
        for k in ("augment", "content_hash"):
            if k in d.attrs:
                del d.attrs[k]
        for split, n in (("train", n_train), ("test", n_test)):
            g = d.create_group(split)
            img = s[split]["images"][:n]
            g.create_dataset("images", data=img, chunks=(min(n, 1024),) + img.shape[1:])
            g.create_dataset("labels", data=s[split]["labels"][:n])
    import os
    os.replace(dst + ".tmp", dst)


if __name__ == "__main__":
    main()
