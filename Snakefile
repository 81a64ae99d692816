# rgbir-reid: RGB-infrared cross-modality person re-identification, end to end.
#   snakemake --cores all                          the default run (built-in demo dataset)
#   snakemake --cores all --configfile my.yaml     your own SYSU-MM01 / RegDB copy
# The config is validated against workflow/schemas/config.schema.yaml when the workflow is parsed.

from snakemake.utils import min_version

min_version("9.0")


# A --configfile replaces the default run instead of being merged into it, so a user's
# datasets are not run beside the demo.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/convert.smk"
include: "workflow/rules/reid.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
