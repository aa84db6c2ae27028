"""Students: built from layers of a pretrained model or a config, with one output head per teacher."""
