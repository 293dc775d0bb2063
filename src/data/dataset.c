/* Data set formats by name, and opening one: each format's reader lives in
 * its own file (cityscapes.c, voc.c, ade20k.c, folder.c, synth.c). */
#include <string.h>

#include "data/readers.h"

static const char *const format_names[] = {
    [SN_DATA_CITYSCAPES] = "cityscapes", [SN_DATA_VOC] = "voc", [SN_DATA_ADE20K] = "ade20k",
    [SN_DATA_FOLDER] = "folder",         [SN_DATA_SYNTH] = "synth",
};
enum { N_FORMATS = (int)(sizeof format_names / sizeof format_names[0]) };

int sn_data_format_parse(const char *name)
{
    for (int i = 0; name && i < N_FORMATS; i++)
        if (!strcmp(name, format_names[i])) return i;
    return -1;
}

const char *sn_data_format_name(sn_data_format f)
{
    return (int)f >= 0 && (int)f < N_FORMATS ? format_names[f] : "unknown";
}

int sn_dataset_open(sn_dataset **out, sn_data_format format, const char *root, const char *split, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (!split) split = "train";
    if (format == SN_DATA_SYNTH) {
        sn_synth_config c;
        sn_synth_config_default(&c);
        return sn_synth_dataset_open(out, &c, split, err, errlen);
    }
    const char *name = sn_data_format_name(format);
    if (!root || !root[0]) return sn_errf(err, errlen, SN_ERR_ARG, "%s: no root folder given", name);
    int rc = sn_check_split_name(name, split, err, errlen);
    if (rc) return rc;
    if (!sn_is_dir(root)) return sn_errf(err, errlen, SN_ERR_IO, "%s: root folder %s does not exist", name, root);
    switch (format) {
    case SN_DATA_CITYSCAPES: return sn_cityscapes_open(out, root, split, err, errlen);
    case SN_DATA_VOC: return sn_voc_open(out, root, split, err, errlen);
    case SN_DATA_ADE20K: return sn_ade20k_open(out, root, split, err, errlen);
    case SN_DATA_FOLDER: return sn_folder_open(out, root, split, err, errlen);
    default: return sn_errf(err, errlen, SN_ERR_ARG, "unknown data format %d", (int)format);
    }
}

void sn_dataset_close(sn_dataset *ds)
{
    if (ds && ds->destroy) ds->destroy(ds);
}
