"""Analysis over excitations: inference, knock-out, anatomy, the untrained control, measures, the reference set."""
