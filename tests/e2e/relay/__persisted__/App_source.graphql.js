/**
 * @generated SignedSource<<63077ba77c1955074cc375ac9f0735e4>>
 * @lightSyntaxTransform
 */

/* eslint-disable */

'use strict';

import AppSourceRefetchQuery_graphql from './AppSourceRefetchQuery.graphql';

var node = {
  "argumentDefinitions": [],
  "kind": "Fragment",
  "metadata": {
    "refetch": {
      "connection": null,
      "fragmentPathInResult": [
        "node"
      ],
      "operation": AppSourceRefetchQuery_graphql,
      "identifierInfo": {
        "identifierField": "id",
        "identifierQueryVariableName": "id"
      }
    }
  },
  "name": "App_source",
  "selections": [
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "id",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "slug",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "name",
      "storageKey": null
    }
  ],
  "type": "Source",
  "abstractKey": null
};

node.hash = "08d8c94891643914b7bcb97c7d7d3979";

export default node;
