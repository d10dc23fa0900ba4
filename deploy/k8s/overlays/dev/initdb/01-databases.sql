-- One database per service (a service never reads another's database).
-- Runs once, when the PostgreSQL volume is first initialised.
CREATE DATABASE auth OWNER medmesh;
CREATE DATABASE phi OWNER medmesh;
CREATE DATABASE synthetic OWNER medmesh;
CREATE DATABASE payments OWNER medmesh;
CREATE DATABASE devices OWNER medmesh;
